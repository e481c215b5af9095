"""One HTTP request to a container's published port, with only the headers given (no default Accept)."""

from __future__ import annotations

import http.client
import time
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: Mapping[str, str] | None = None, timeout: float = 60, host: str = "127.0.0.1") -> Response:
    """One request on a fresh connection; header names in the response are lower-cased."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    t0 = time.perf_counter()
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data, time.perf_counter() - t0)
    finally:
        conn.close()
