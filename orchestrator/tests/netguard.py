"""Refuse and record every non-loopback connection (DNS lookups included) in this process."""

from __future__ import annotations

import ipaddress
import socket
import traceback
from typing import Any

ATTEMPTS: list[str] = []
_real_connect = socket.socket.connect
_real_getaddrinfo = socket.getaddrinfo


def _loopback(host: Any) -> bool:
    if host in ("localhost", "", None) or (isinstance(host, bytes) and host == b"localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


def _guard_connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
        ATTEMPTS.append(f"connect {address}\n{''.join(traceback.format_stack(limit=12))}")
        raise ConnectionRefusedError(f"netguard: non-loopback connection to {address} refused")
    return _real_connect(self, address)


def _guard_getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
    if not _loopback(host):
        ATTEMPTS.append(f"getaddrinfo {host}\n{''.join(traceback.format_stack(limit=12))}")
        raise socket.gaierror(f"netguard: lookup of {host} refused")
    return _real_getaddrinfo(host, *args, **kw)


def install() -> None:
    socket.socket.connect = _guard_connect  # type: ignore[method-assign, assignment]
    socket.getaddrinfo = _guard_getaddrinfo
