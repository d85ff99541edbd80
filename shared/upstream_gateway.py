"""Reading cameras from a gateway: its camera list and one pull-mode WebSocket per camera."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from shared.settings import is_camera_id
from shared.transport import describe_error
from shared.upstream import CameraReader, Delivery, MalformedHandler, Upstream, UpstreamError
from shared.wire import WireError
from shared.wire_ws import PULL_REQUEST, WS_HEARTBEAT_SECONDS, from_ws_message

AuthHeaders = Callable[[], dict[str, str]]
CONNECT_TIMEOUT_SECONDS = 2.0
DISCOVERY_TIMEOUT_SECONDS = 2.0
MAX_WS_MESSAGE_BYTES = 64 * 1024 * 1024
CLOSED = (
    aiohttp.WSMsgType.CLOSE,
    aiohttp.WSMsgType.CLOSING,
    aiohttp.WSMsgType.CLOSED,
    aiohttp.WSMsgType.ERROR,
)


class GatewayUpstream(Upstream):
    transport = "http"

    def __init__(
        self, url: str, on_malformed: MalformedHandler, auth_headers: AuthHeaders = lambda: {}
    ) -> None:
        super().__init__(on_malformed)
        self.url = url.rstrip("/")
        # Called per request: a minted token renews itself (and stays out of URLs and logs).
        self.auth_headers = auth_headers
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        # Created on first use: a ClientSession belongs to the running event loop.
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_SECONDS)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def discover(self) -> dict[str, float | None]:
        try:
            timeout = aiohttp.ClientTimeout(total=DISCOVERY_TIMEOUT_SECONDS)
            async with self.session.get(
                f"{self.url}/cameras", timeout=timeout, headers=self.auth_headers()
            ) as response:
                response.raise_for_status()
                body = await response.json()
            listed = body["cameras"]
            named = [(entry.get("camera"), entry.get("age_seconds")) for entry in listed]
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UpstreamError(f"camera list from {self.url}: {describe_error(exc)}") from exc
        cameras: dict[str, float | None] = {}
        for camera, age in named:
            if is_camera_id(camera):
                cameras[camera] = float(age) if isinstance(age, int | float) else None
            else:
                self.on_malformed("bad_camera", f"camera id {str(camera)[:80]!r} in the gateway's list")
        return cameras

    def reader(self, camera: str) -> GatewayCameraReader:
        return GatewayCameraReader(self, camera)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class GatewayCameraReader(CameraReader):
    """``?pull=1`` (the default): the gateway sends a frame only when asked with ``next``, the
    newest it has. ``pull=False``: push mode, every frame the gateway receives while we keep up
    (a slower reader loses frames, seen as gaps in ``seq``)."""

    def __init__(self, upstream: GatewayUpstream, camera: str, pull: bool = True) -> None:
        super().__init__(camera, upstream.on_malformed)
        self._upstream = upstream
        self._asks = pull
        self._url = f"{upstream.url}/cameras/{camera}/ws" + ("?pull=1" if pull else "")
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    async def pull(self) -> Delivery:
        try:
            return await self._pull()
        except UpstreamError:
            await self.close()
            raise
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            await self.close()
            raise UpstreamError(describe_error(exc)) from exc

    async def _pull(self) -> Delivery:
        ws = self._ws if self._ws is not None and not self._ws.closed else await self._connect()
        while True:
            if self._asks:
                await ws.send_str(PULL_REQUEST)
            message = await ws.receive()  # pings and pongs are answered inside aiohttp
            if message.type in CLOSED:
                raise UpstreamError("gateway closed the WebSocket")
            if message.type != aiohttp.WSMsgType.BINARY:
                continue
            try:
                meta, jpeg = from_ws_message(message.data)
            except WireError as exc:
                self._on_malformed("bad_message", f"{self.camera}: {exc}")
                continue
            if self._accept(meta, "the socket"):
                return Delivery(meta, jpeg)

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        upstream = self._upstream
        self._ws = await upstream.session.ws_connect(
            self._url,
            heartbeat=WS_HEARTBEAT_SECONDS,
            max_msg_size=MAX_WS_MESSAGE_BYTES,
            compress=0,
            headers=upstream.auth_headers(),
        )
        self.connected = True
        return self._ws

    async def close(self) -> None:
        self.connected = False
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
