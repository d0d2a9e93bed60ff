"""Compatibility shims that let python-wechaty 0.10.7 import on today's libraries.

wechaty 0.10.7 (and wechaty-puppet-service 0.8.10) were written against older dependencies.
Import this module before anything from `wechaty*`; `gpudesk.bot.wechat` does so. Each shim
checks for the problem first and does nothing when the installed library is fine, so the
module is harmless on an environment that does not need it and safe to import twice.

- pyee >= 12 dropped the top-level `pyee.AsyncIOEventEmitter` (it lives in `pyee.asyncio`).
  Pinning pyee 11 instead warns on every emitter created, so we alias rather than pin.
- urllib3 2 dropped `urllib3.get_host`, which `wechaty.user.url_link` imports at module level.
- `WechatyOptions` uses a `PuppetOptions()` instance as a dataclass default; Python >= 3.11
  refuses unhashable defaults, so `PuppetOptions` gets an identity `__hash__`. (The default
  is then shared by every `WechatyOptions()`: always pass a fresh `PuppetOptions`.)
- Python 3.13 removed `telnetlib`, used by the SDK only to probe that a port accepts TCP.
  On 3.11/3.12 it still exists but warns on import: we import it once with that warning
  silenced, so the SDK's own import finds it in `sys.modules`.
"""

from __future__ import annotations

import importlib
import socket
import sys
import types
import warnings

__all__ = ["apply"]


def _alias_pyee_asyncio_emitter() -> None:
    import pyee

    if hasattr(pyee, "AsyncIOEventEmitter"):
        return
    from pyee.asyncio import AsyncIOEventEmitter

    pyee.AsyncIOEventEmitter = AsyncIOEventEmitter  # type: ignore[attr-defined]


def _restore_urllib3_get_host() -> None:
    import urllib3

    if hasattr(urllib3, "get_host"):
        return
    from urllib3.util import parse_url

    def get_host(url: str) -> tuple[str, str | None, int | None]:
        """urllib3 1.x semantics: (scheme defaulting to "http", host, port)."""
        parsed = parse_url(url)
        return parsed.scheme or "http", parsed.hostname, parsed.port

    urllib3.get_host = get_host  # type: ignore[attr-defined]


def _make_puppet_options_hashable() -> None:
    from wechaty_puppet.schemas.puppet import PuppetOptions

    if PuppetOptions.__hash__ is not None:
        return
    # Identity hash: nothing puts PuppetOptions in a set or dict; it only has to pass the
    # dataclass "mutable default" check when `wechaty.wechaty` defines `WechatyOptions`.
    PuppetOptions.__hash__ = object.__hash__  # type: ignore[assignment]


class _Telnet:
    """The slice of `telnetlib.Telnet` the SDK uses: `open()` a TCP connection, then drop it."""

    def __init__(self, host: str | None = None, port: int = 0, timeout: float = 10.0) -> None:
        self._sock: socket.socket | None = None
        if host is not None:
            self.open(host, port, timeout)

    def open(self, host: str, port: int = 0, timeout: float = 10.0) -> None:
        # Raises OSError (== socket.error) when nothing listens, which is what the SDK catches.
        self.close()
        self._sock = socket.create_connection((host, port or 23), timeout)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __del__(self) -> None:
        self.close()


def _provide_telnetlib() -> None:
    if "telnetlib" in sys.modules:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            importlib.import_module("telnetlib")
    except ModuleNotFoundError:
        stub = types.ModuleType("telnetlib", "Stub standing in for telnetlib (gone in 3.13).")
        stub.Telnet = _Telnet  # type: ignore[attr-defined]
        sys.modules["telnetlib"] = stub


def apply() -> None:
    """Install every shim that the current environment needs (idempotent)."""
    _alias_pyee_asyncio_emitter()
    _restore_urllib3_get_host()
    _make_puppet_options_hashable()
    _provide_telnetlib()


apply()
