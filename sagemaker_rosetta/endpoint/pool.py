"""Keep-alive HTTP connections from the front to the containers' published ports.

One request per connection at a time; idle connections are kept per port and reused, so a hop
through a chain costs a request, not a TCP handshake. A connection the container closed while idle
is detected when it is reused (the request fails before any answer) and the request is sent again
once on a fresh connection; nothing else is ever retried.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Mapping
from dataclasses import dataclass

#: failures of a reused connection that mean "closed while idle", not "the container failed"
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, http.client.CannotSendRequest)


@dataclass
class Reply:
    status: int
    #: header names lower-cased
    headers: dict[str, str]
    body: bytes


class Pool:
    def __init__(self, max_idle: int = 32, host: str = "127.0.0.1") -> None:
        self.max_idle, self.host = max_idle, host
        self._idle: dict[int, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def request(self, port: int, method: str, path: str, body: bytes | None, headers: Mapping[str, str],
                timeout: float) -> Reply:
        """One request; raises ``OSError``/``http.client.HTTPException`` (``TimeoutError`` after
        ``timeout`` s without an answer) when the container does not answer."""
        for attempt in (0, 1):
            conn, reused = self._take(port, timeout)
            try:
                conn.request(method, path, body=body, headers=dict(headers))
                resp = conn.getresponse()
                data = resp.read()
            except _STALE:
                conn.close()
                if reused and attempt == 0:
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            reply = Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
            if resp.will_close:
                conn.close()
            else:
                self._give(port, conn)
            return reply
        raise AssertionError("unreachable")

    def _take(self, port: int, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            idle = self._idle.get(port)
            conn = idle.pop() if idle else None
        if conn is None:
            return http.client.HTTPConnection(self.host, port, timeout=timeout), False
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn, True

    def _give(self, port: int, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(port, [])
            if len(idle) < self.max_idle:
                idle.append(conn)
                return
        conn.close()

    def drop(self, port: int) -> None:
        """Close the idle connections to ``port`` (its container went away)."""
        with self._lock:
            idle = self._idle.pop(port, [])
        for conn in idle:
            conn.close()
