"""``/invocations`` for one loaded model: the order of checks, hooks and negotiation of D3.

The single-model route and the multi-model ``/models/<name>/invoke`` route (D6) both answer
through a :class:`Predictor`, so the two cannot drift apart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rosetta_runtime import codecs
from rosetta_runtime.adapter import ModelAdapter
from rosetta_runtime.batching import Batcher
from rosetta_runtime.errors import HTTPError
from rosetta_runtime.paths import ServingSettings
from rosetta_runtime.wire import Reply, Request

log = logging.getLogger("rosetta.invocations")

#: this many inline predictions in a row slower than INLINE_LIMIT_S, or one 10x slower, switch the model
#: to the predict thread for good (one slowish call can be a GC pause; three in a row is the model)
INLINE_LIMIT_S = 0.05
INLINE_STRIKES = 3
#: a warm-up prediction faster than this marks the model as fast enough to predict inline
FAST_WARM_UP_S = 0.01


_pool: tuple[int, ThreadPoolExecutor] | None = None


def predict_thread() -> ThreadPoolExecutor:
    """The worker's one predict thread, shared by its models; created in the worker (after the fork)."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict"))
    return _pool[1]


class Predictor:
    """One loaded model behind the ``/invocations`` semantics."""

    def __init__(self, adapter: ModelAdapter, settings: ServingSettings) -> None:
        self.adapter = adapter
        self.settings = settings
        #: set after a fast warm-up when other workers can answer /ping (see :meth:`_predict`)
        self.fast_model = False
        self._slow_inline = 0
        features = getattr(adapter, "features", None)
        self._options = codecs.DecodeOptions(adapter.n_features, settings.csv_header,
                                             tuple(features) if features is not None else None)
        # an adapter that cannot say whether the user wrote the hooks is asked every time (D3)
        self._input_fn = bool(getattr(adapter, "has_input_fn", True))
        self._output_fn = bool(getattr(adapter, "has_output_fn", True))
        #: SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT: the answer's type when Accept is absent, empty or */*
        self._default_accept = codecs.parse_media_type(settings.default_accept)[0] if settings.default_accept else None
        self._default_codec = codecs.lookup(self._default_accept) if self._default_accept else None
        #: D9: concurrent requests share predict calls (per model and worker) when predict is row-wise
        self.batcher = (Batcher(self._predict, settings.batch_max_rows, settings.batch_wait_ms / 1000)
                        if batching_on(adapter, settings) else None)

    def _negotiate(self, accept: str | None, codec: codecs.Codec | None) -> tuple[str | None, codecs.Codec | None]:
        """D3: Accept absent, empty or */* → SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, else the request's
        type if it has a codec, else application/json (the inference toolkit's default)."""
        fallback = self._default_codec or codec or codecs.JSON
        default = self._default_accept or fallback.media_type
        if not accept or accept == "*/*":  # the common case, without a cache lookup
            return default, fallback
        return codecs.negotiate(accept, default, fallback.media_type)

    async def invoke(self, req: Request) -> Reply:
        """D3's order: 413 (transport) → 415 → 406 → decode 400 → predict 500 → record count 500 → encode."""
        media, params = codecs.parse_media_type(req.content_type or "text/csv")
        codec = codecs.lookup(media)
        if codec is None and not self._input_fn:
            return _unsupported(req.content_type)
        preferred, out = self._negotiate(req.accept, codec)
        if out is None and not self._output_fn:
            return _not_acceptable(req.accept)
        adapter = self.adapter
        X: Any = None
        if self._input_fn:
            try:
                X = adapter.decode(req.body, media)
            except HTTPError:
                raise
            except Exception as exc:  # the user's input_fn refused the payload: the client's problem
                log.warning("input_fn failed: %r", exc)
                return Reply.text(400, f"cannot decode payload: {first_line(exc)}")
        if X is None:
            if codec is None:  # input_fn did not handle a type without a codec
                return _unsupported(req.content_type)
            X = codec.decode(req.body, params, self._options)
        try:
            if self.batcher is not None:
                predictions = await self.batcher.predict(X, len(req.body))
            else:
                predictions = await self._predict(X, len(req.body))
        except HTTPError:
            raise
        except Exception as exc:
            log.exception("predict failed")
            return Reply.text(500, f"model error: {first_line(exc)}")
        n_in = _records(X)
        if n_in is not None:  # B-08: one output record per input record, checked before output_fn
            try:
                n_out = len(predictions)
            except TypeError:
                n_out = -1
            if n_out != n_in:
                log.error("predict returned %s results for %s records", n_out, n_in)
                return Reply.text(500, f"model error: predict returned {n_out} results for {n_in} records")
        if self._output_fn and preferred is not None:
            try:
                custom = adapter.encode(predictions, preferred)
            except HTTPError:
                raise
            except Exception as exc:
                log.exception("output_fn failed")
                return Reply.text(500, f"model error: {first_line(exc)}")
            if custom is not None:
                body, ctype = custom
                return Reply(200, body, ctype)
        if out is None:
            return _not_acceptable(req.accept)
        return Reply(200, out.encode(predictions), out.media_type)

    async def _predict(self, X: Any, size: int) -> Any:
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
        return await asyncio.get_running_loop().run_in_executor(predict_thread(), self.adapter.predict, X)


def batching_on(adapter: ModelAdapter, settings: ServingSettings) -> bool:
    """D9: ``ROSETTA_BATCHING=auto`` (the default) or ``on``, and the user declared predict row-wise."""
    return settings.batching in ("auto", "on") and getattr(adapter, "rowwise", False) is True


def batching_status(adapter: ModelAdapter, settings: ServingSettings) -> str:
    """The start-up log line's words on batching (D9)."""
    if batching_on(adapter, settings):
        return (f"batching on: up to {settings.batch_max_rows} rows per predict call, "
                f"wait {settings.batch_wait_ms:g} ms (ROSETTA_BATCH_MAX_ROWS, ROSETTA_BATCH_WAIT_MS)")
    if settings.batching == "off":
        return "batching off (ROSETTA_BATCHING=off)"
    return "batching off: predict is not declared row-wise (@rosetta_runtime.rowwise)"


def first_line(exc: BaseException) -> str:
    """What a client is told about a user error: the message's first line, ≤ 200 characters,
    without the exception's type (type names differ per language, D3)."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def _records(X: Any) -> int | None:
    """The number of records of a matrix or table model input (2-D); None for anything else."""
    shape = getattr(X, "shape", None)
    return int(shape[0]) if isinstance(shape, tuple) and len(shape) == 2 else None


def _unsupported(content_type: str | None) -> Reply:
    return Reply.text(415, f"unsupported Content-Type '{content_type}'; accepted: {codecs.accepted_types()}")


def _not_acceptable(accept: str | None) -> Reply:
    return Reply.text(406, f"cannot produce '{accept}'; available: {codecs.accepted_types()}")
