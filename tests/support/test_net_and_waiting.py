"""tests.support.net and .waiting; and tests.support stays importable without pytest (the bench)."""

from __future__ import annotations

import ast
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.net import free_port, http_get, port_open
from tests.support.waiting import wait_until


class _Answers(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/ok" else 404
        body = self.path.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_http_get_returns_any_status_with_its_body(server_port: int) -> None:
    assert http_get(f"http://127.0.0.1:{server_port}/ok") == (200, b"/ok")
    assert http_get(f"http://127.0.0.1:{server_port}/missing") == (404, b"/missing")
    assert port_open(server_port)


def test_http_get_raises_when_nothing_listens() -> None:
    port = free_port()
    assert not port_open(port)
    with pytest.raises(OSError):
        http_get(f"http://127.0.0.1:{port}/", timeout=1)


def test_wait_until_retries_only_the_named_errors() -> None:
    attempts: list[str | OSError] = [OSError("not yet"), OSError("not yet"), "ready"]

    def next_attempt() -> str:
        item = attempts.pop(0)
        if isinstance(item, OSError):
            raise item
        return item

    assert wait_until(next_attempt, timeout=2, interval=0.001, retry_on=(OSError,)) == "ready"
    with pytest.raises(RuntimeError, match="died"):
        wait_until(lambda: (_ for _ in ()).throw(RuntimeError("died")), timeout=2, retry_on=(OSError,))
    with pytest.raises(TimeoutError, match="last error: OSError: refused"):
        wait_until(lambda: (_ for _ in ()).throw(OSError("refused")), timeout=0.05, interval=0.01)


def test_support_modules_do_not_import_pytest() -> None:
    """The bench imports tests.support and runs without the test extra."""
    for module in Path(__file__).parent.glob("*.py"):
        if module.name.startswith("test_"):
            continue
        tree = ast.parse(module.read_text())
        imported = {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not {name for name in imported if name.split(".")[0] in ("pytest", "_pytest")}, module.name
