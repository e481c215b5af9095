"""The ASGI transport around the routing table: headers, the body limit (S-12), errors as text.

A raw ASGI callable rather than a framework: for two hot routes a router, dependency
injection and request objects only add per-request cost (see docs/benchmarks.md).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from rosetta_runtime.routes import Reply, Request, Service, dispatch

log = logging.getLogger("rosetta.app")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: keep reading (and discarding) an oversized body up to this, so the client sees the 413
DRAIN_LIMIT = 256 * 1024 * 1024


class TooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


async def read_body(receive: Receive, limit: int, declared: int | None) -> bytes:
    if declared is not None and declared > limit:
        await _drain(receive, declared)
        raise TooLarge(declared)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:  # chunked bodies are counted as they arrive
            if message.get("more_body", False):
                size += await _drain(receive, DRAIN_LIMIT)
            raise TooLarge(size)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _drain(receive: Receive, cap: int) -> int:
    seen = 0
    while seen <= cap:
        message = await receive()
        seen += len(message.get("body", b""))
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            break
    return seen


class App:
    """ASGI entry point: one instance per worker process."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.limit = service.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        content_type = accept = target = None
        length: int | None = None
        for key, value in scope["headers"]:
            if key == b"content-type":
                content_type = value.decode("latin-1")
            elif key == b"accept":
                accept = value.decode("latin-1")
            elif key == b"x-amzn-sagemaker-target-model":
                target = value.decode("latin-1")
            elif key == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    await _send(send, Reply.text(400, "invalid Content-Length"))
                    return
        try:
            body = await read_body(receive, self.limit, length)
        except TooLarge as exc:
            await _send(send, Reply.text(413, f"payload too large: {exc.size} bytes > limit {self.limit} bytes",
                                         {"Connection": "close"}))
            return
        try:
            raw_path = scope.get("raw_path")
            req = Request(scope["method"], scope["path"], content_type, accept, body,
                          scope.get("query_string", b"").decode("latin-1"),
                          raw_path.decode("latin-1") if raw_path else None, target)
            reply = await dispatch(self.service, req)
        except Exception as exc:  # never a bare traceback to the client
            log.exception("request failed")
            reply = Reply.text(500, f"internal error: {type(exc).__name__}")
        await _send(send, reply)


async def _send(send: Send, reply: Reply) -> None:
    headers = [(b"content-length", str(len(reply.body)).encode())]
    if reply.content_type:
        headers.append((b"content-type", reply.content_type.encode()))
    headers += [(k.lower().encode(), v.encode()) for k, v in reply.headers.items()]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})
