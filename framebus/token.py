"""Mint an access token: ``python -m framebus.token --read 'cam*' --ttl 8h``.

The signing secret is read from the environment (``AUTH_SECRET``), never from the command
line, where every user of the machine could see it in ``ps``. The token goes to stdout, or,
with ``--link URL``, a viewer page link carrying it (``URL?token=…``), which the viewer trades
for an HttpOnly cookie at once.

    python -m framebus.token --read 'cam*' --ttl 8h
    python -m framebus.token --publish cam0 --ttl 1h
    python -m framebus.token --read '*' --link http://localhost:8000/
    python -m framebus.token --admin --ttl 10m
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from yarl import URL

from shared.settings import MIN_AUTH_SECRET_CHARS
from shared.tokens import ADMIN, MONITOR, PUBLISH, READ, Scope, ScopeError, mint

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_TTL_SECONDS = 366 * 86400


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``8h``, ``7d`` -> seconds."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"duration {text!r} must look like 90s, 30m, 8h or 7d")
    seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    if not 0 < seconds <= MAX_TTL_SECONDS:
        raise argparse.ArgumentTypeError(f"duration {text!r} must be more than 0 and at most 366d")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m framebus.token",
        description="Print a signed framebus access token (secret from AUTH_SECRET).",
    )
    parser.add_argument("--read", action="append", default=[], metavar="PATTERN", help="cameras it may watch")
    parser.add_argument(
        "--publish", action="append", default=[], metavar="PATTERN", help="cameras it may post frames for"
    )
    parser.add_argument("--admin", action="store_true", help="everything")
    parser.add_argument("--monitor", action="store_true", help="health endpoints a setting closed")
    parser.add_argument(
        "--ttl", type=parse_duration, default=parse_duration("8h"), help="lifetime (default 8h)"
    )
    parser.add_argument("--subject", default="", help="who it is for (the sub claim; shows in no log)")
    parser.add_argument("--link", metavar="URL", help="print URL?token=… (a viewer page link) instead")
    return parser


def scopes_from(args: argparse.Namespace) -> list[Scope]:
    scopes = [Scope.parse(f"{READ}:{p}") for p in args.read]
    scopes += [Scope.parse(f"{PUBLISH}:{p}") for p in args.publish]
    scopes += [Scope(ADMIN)] if args.admin else []
    scopes += [Scope(MONITOR)] if args.monitor else []
    return scopes


def link_with(url: str, token: str) -> str:
    return str(URL(url).update_query(token=token))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    secret = os.environ.get("AUTH_SECRET", "")
    if len(secret) < MIN_AUTH_SECRET_CHARS:
        state = "not set" if not secret else f"only {len(secret)} characters"
        parser.error(
            f"AUTH_SECRET is {state}; it must be the services' secret ({MIN_AUTH_SECRET_CHARS}+ characters)"
        )
    try:
        scopes = scopes_from(args)
    except ScopeError as exc:
        parser.error(str(exc))
    if not scopes:
        parser.error("give at least one of --read PATTERN, --publish PATTERN, --admin, --monitor")
    if args.link and not args.link.startswith(("http://", "https://")):
        parser.error("--link must be an http:// or https:// URL")
    token = mint(secret, scopes, args.ttl, subject=args.subject)
    print(link_with(args.link, token) if args.link else token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
