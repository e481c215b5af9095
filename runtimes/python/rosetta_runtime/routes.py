"""The HTTP contract: one routing table and its three handlers (S-03, S-07, S-16, B-03).

Handlers take a :class:`Request` and return a :class:`Reply`; transport lives in
:mod:`rosetta_runtime.app`. Error replies are one short line of text (S-17).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rosetta_runtime import codecs
from rosetta_runtime.adapter import ModelAdapter
from rosetta_runtime.errors import BadRequest, HTTPError
from rosetta_runtime.paths import ServingSettings

log = logging.getLogger("rosetta.routes")

TEXT = "text/plain; charset=utf-8"
#: this many inline predictions in a row slower than INLINE_LIMIT_S, or one 10x slower, switch the worker
#: to its predict thread for good (one slowish call can be a GC pause; three in a row is the model)
INLINE_LIMIT_S = 0.05
INLINE_STRIKES = 3
#: a warm-up prediction faster than this marks the model as fast enough to predict inline
FAST_WARM_UP_S = 0.01


@dataclass
class Request:
    method: str
    path: str
    content_type: str | None
    accept: str | None
    body: bytes


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, (message + "\n").encode(), TEXT, headers or {})


class Service:
    """The loaded model plus readiness; owns the three handlers."""

    def __init__(self, adapter: ModelAdapter | None, settings: ServingSettings) -> None:
        self.adapter = adapter
        self.settings = settings
        self.ready = adapter is not None
        #: set by the server after a fast warm-up when other workers can answer /ping
        self.fast_model = False
        self._slow_inline = 0
        self._executor: ThreadPoolExecutor | None = None
        self._options = codecs.DecodeOptions(adapter.n_features if adapter else None, settings.csv_header)
        accept = settings.default_accept
        default = codecs.lookup(codecs.parse_media_type(accept)[0]) if accept else None
        self._default_accept = default

    # -- handlers ---------------------------------------------------------------------------
    async def ping(self, req: Request) -> Reply:
        return Reply(200) if self.ready else Reply.text(503, "model is loading")

    async def execution_parameters(self, req: Request) -> Reply:
        s = self.settings
        concurrent = max(1, min(s.max_concurrent_transforms, 100 // s.batch_payload_mb))  # B-05: product ≤ 100
        body = {"MaxConcurrentTransforms": concurrent, "BatchStrategy": s.batch_strategy,
                "MaxPayloadInMB": s.batch_payload_mb}
        return Reply(200, json.dumps(body).encode(), "application/json")

    async def invocations(self, req: Request) -> Reply:
        if not self.ready or self.adapter is None:
            return Reply.text(503, "model is loading")
        media, params = codecs.parse_media_type(req.content_type or "text/csv")
        codec = codecs.lookup(media)
        if codec is None:
            accepted = codecs.accepted_types()
            return Reply.text(415, f"unsupported Content-Type '{req.content_type}'; accepted: {accepted}")
        out = codecs.negotiate(req.accept, self._default_accept or codec)
        if out is None:
            return Reply.text(406, f"cannot produce '{req.accept}'; available: {codecs.accepted_types()}")
        adapter = self.adapter
        try:
            X: Any = adapter.decode(req.body, media)
        except HTTPError:
            raise
        except Exception as exc:  # the user's input_fn refused the payload: the client's problem
            log.warning("input_fn failed: %r", exc)
            return Reply.text(400, f"cannot decode payload: {type(exc).__name__}: {str(exc)[:200]}")
        if X is None:
            X = codec.decode(req.body, params, self._options)
        try:
            predictions = await self._predict(X, len(req.body))
        except HTTPError:
            raise
        except Exception as exc:
            log.exception("predict failed")
            return Reply.text(500, f"model error: {type(exc).__name__}")
        if isinstance(X, np.ndarray):
            try:
                n_out = len(predictions)
            except TypeError:
                n_out = -1
            if n_out != X.shape[0]:  # B-08: one output record per input record
                log.error("predict returned %s results for %s records", n_out, X.shape[0])
                return Reply.text(500, f"model error: predict returned {n_out} results for {X.shape[0]} records")
        custom = adapter.encode(predictions, out.media_type)
        if custom is not None:
            body, ctype = custom
            return Reply(200, body, ctype)
        return Reply(200, out.encode(predictions), out.media_type)

    async def _predict(self, X: Any, size: int) -> Any:
        assert self.adapter is not None
        if self.adapter.inline:
            return self.adapter.predict(X)
        if self.fast_model and size <= self.settings.inline_max_bytes:
            # a proven-fast model on a small payload: a thread hop would cost more than the
            # prediction. Another worker answers /ping meanwhile (only with ≥ 2 workers, S-07).
            t0 = time.perf_counter()
            try:
                return self.adapter.predict(X)
            finally:
                took = time.perf_counter() - t0
                self._slow_inline = self._slow_inline + 1 if took > INLINE_LIMIT_S else 0
                if self._slow_inline >= INLINE_STRIKES or took > 10 * INLINE_LIMIT_S:  # never again here
                    self.fast_model = False
                    log.warning("small requests took over %.0f ms (last %.0f ms): predictions move to a thread",
                                INLINE_LIMIT_S * 1e3, took * 1e3)
        if self._executor is None:  # created in the worker, after fork
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.adapter.predict, X)


Handler = Callable[[Service, Request], Awaitable[Reply]]

#: path → method → handler. Exact paths: no trailing-slash redirects; 404 vs 405 kept distinct.
ROUTES: dict[str, dict[str, Handler]] = {
    "/ping": {"GET": Service.ping, "HEAD": Service.ping},
    "/invocations": {"POST": Service.invocations},
    "/execution-parameters": {"GET": Service.execution_parameters},
}


async def dispatch(service: Service, req: Request) -> Reply:
    methods = ROUTES.get(req.path)
    if methods is None:
        return Reply.text(404, "not found")
    handler = methods.get(req.method)
    if handler is None:
        return Reply.text(405, "method not allowed", {"Allow": ", ".join(methods)})
    try:
        return await handler(service, req)
    except BadRequest as exc:
        return Reply.text(400, exc.message)
    except HTTPError as exc:
        return Reply.text(exc.status, exc.message, exc.headers)
