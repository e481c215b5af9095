"""Adaptive batching (D9): concurrent requests to one row-wise model share one ``predict`` call.

The user declares that ``predict`` is row-wise (``@rosetta_runtime.rowwise``): ``predict(model, X)`` on
stacked rows equals the row-wise concatenation of ``predict`` on each part. Then each worker keeps one
:class:`Batcher` per model:

- an idle model predicts at once: the request that finds it idle lets one event-loop turn pass (the
  requests whose bytes have already arrived are parsed and join it) and never waits for more;
- requests that arrive while a prediction runs queue up and go together as the next batch as soon as
  it finishes (plus at most ``ROSETTA_BATCH_WAIT_MS`` to fill up to ``ROSETTA_BATCH_MAX_ROWS``);
- only float matrices of the same dtype and width are stacked, at most ``max_rows`` rows (a larger
  request runs alone); anything else (an ``input_fn`` result that is not such a matrix) runs alone;
- one ``predict`` call per batch; its result is sliced back by row counts. A model error, a result
  that cannot be sliced or one whose length is not the batch's row count: every request of the batch
  is predicted alone, so each gets exactly the answer (or the error) it would get unbatched.

Requests are decoded and validated one by one before they get here, and encoded one by one after
(codecs and negotiation are per request), so batching never changes a response's bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

log = logging.getLogger("rosetta.batching")

#: the attribute ``@rowwise`` sets on ``predict``
ROWWISE_ATTRIBUTE = "__rosetta_rowwise__"

F = TypeVar("F", bound=Callable[..., Any])

#: ``predict(X, body bytes) -> predictions``: one model's prediction (inline or on its thread)
PredictFn = Callable[[Any, int], Awaitable[Any]]

#: event-loop turns an idle model lets pass before predicting: the requests parsed from the same poll
#: (whose tasks are ready but not started) join the call. Without it, with inline predictions, requests
#: that arrived together would each find the model idle in turn and never share a call.
IDLE_YIELDS = 1


def rowwise(predict: F) -> F:
    """Declare ``predict`` row-wise, so concurrent requests may share one call (D9)::

        @rosetta_runtime.rowwise
        def predict(model, X):
            return model.predict_proba(X)

    Row-wise means that ``predict(model, np.vstack([A, B]))`` equals
    ``np.concatenate([predict(model, A), predict(model, B)])``: one result per row that depends on
    that row only. Without the declaration requests are never batched.
    """
    setattr(predict, ROWWISE_ATTRIBUTE, True)
    return predict


def is_rowwise(predict: Any) -> bool:
    """Whether ``predict`` carries the ``@rowwise`` declaration."""
    return getattr(predict, ROWWISE_ATTRIBUTE, False) is True


def stack_key(X: Any) -> Hashable | None:
    """What requests must share to be stacked (dtype and width of a 2-D numeric matrix), or None:
    predicted alone."""
    if type(X) is np.ndarray and X.ndim == 2 and X.shape[0] > 0 and X.dtype.kind in "fiu":
        return X.dtype.str, X.shape[1]
    return None


def split(predictions: Any, counts: list[int]) -> list[Any] | None:
    """``predictions`` cut into consecutive parts of ``counts`` records, or None when its length is not
    their sum or it cannot be sliced (then every request is predicted alone)."""
    try:
        if len(predictions) != sum(counts):
            return None
        parts = []
        start = 0
        for n in counts:
            parts.append(predictions[start:start + n])
            start += n
        return parts
    except Exception:  # no len(), no slicing: not a sequence of records
        return None


@dataclass
class _Request:
    X: Any
    rows: int
    key: Hashable | None
    size: int
    future: asyncio.Future[Any]


class Batcher:
    """One model's queue in one worker (see the module's text). Created anywhere; the event loop is
    only touched when the first request arrives."""

    def __init__(self, predict: PredictFn, max_rows: int, wait_s: float) -> None:
        self._predict = predict
        self.max_rows = max_rows
        self.wait_s = wait_s
        self._queue: deque[_Request] = deque()
        #: a request is predicting (the leader) or a drain task is running: newcomers queue
        self._busy = False
        self._drain_task: asyncio.Task[None] | None = None
        self._arrived: asyncio.Event | None = None
        #: requests answered and predict calls made (retries alone included): logged when a worker stops
        self.requests = 0
        self.calls = 0

    async def predict(self, X: Any, size: int) -> Any:
        """This request's predictions, from a batch or alone; raises what ``predict`` raised on it alone.

        The request that finds the model idle leads: it lets the requests already parsed join, then
        predicts (alone: no queue, no task, no future) and hands whatever queued meanwhile to a drain task.
        """
        loop = asyncio.get_running_loop()
        key = stack_key(X)
        rows = X.shape[0] if key is not None else 1
        if self._busy:
            request = _Request(X, rows, key, size, loop.create_future())
            self._queue.append(request)
            if self._arrived is not None:
                self._arrived.set()
            return await request.future
        self._busy = True
        try:
            for _ in range(IDLE_YIELDS):  # requests whose bytes are already here join (a poll, not a wait)
                await asyncio.sleep(0)
            if not self._queue:
                self.requests += 1
                self.calls += 1
                return await self._predict(X, size)
            me = _Request(X, rows, key, size, loop.create_future())
            self._queue.appendleft(me)
            await self._run(self._take())
            return me.future.result()
        finally:
            if self._queue:  # arrived while this prediction ran: the next batch, without this request
                self._drain_task = loop.create_task(self._drain())
            else:
                self._busy = False

    async def _drain(self) -> None:
        try:
            while self._queue:
                if self.wait_s > 0:  # every batch here formed while a prediction ran
                    await self._fill()
                await self._run(self._take())
        finally:
            self._drain_task = None
            self._busy = False
            while self._queue:  # only when cancelled (the worker stops): fail rather than hang
                request = self._queue.popleft()
                if not request.future.done():
                    request.future.set_exception(RuntimeError("the server is stopping"))

    async def _fill(self) -> None:
        """Wait up to ``wait_s`` for the head's batch to reach ``max_rows`` (it leaves as soon as it does)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        if self._arrived is None:
            self._arrived = asyncio.Event()
        while self._queue[0].key is not None and self._rows_like_head() < self.max_rows:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    def _rows_like_head(self) -> int:
        key = self._queue[0].key
        return sum(r.rows for r in self._queue if r.key == key)

    def _take(self) -> list[_Request]:
        """The next batch: the oldest request, then the next ones of its key in arrival order while they
        fit in ``max_rows``; the others keep their places."""
        head = self._queue.popleft()
        batch = [head]
        if head.key is None or head.rows >= self.max_rows:
            return batch
        rows = head.rows
        rest: deque[_Request] = deque()
        full = False
        for request in self._queue:
            if not full and request.key == head.key:
                if rows + request.rows <= self.max_rows:
                    batch.append(request)
                    rows += request.rows
                    continue
                full = True  # first come, first served: no later, smaller request jumps ahead
            rest.append(request)
        self._queue = rest
        return batch

    async def _run(self, batch: list[_Request]) -> None:
        batch = [r for r in batch if not r.future.done()]  # a client that went away
        self.requests += len(batch)
        if len(batch) == 1:
            await self._alone(batch[0])
            return
        if not batch:
            return
        parts = None
        self.calls += 1
        try:
            predictions = await self._predict(np.concatenate([r.X for r in batch]), sum(r.size for r in batch))
            parts = split(predictions, [r.rows for r in batch])
            if parts is None:
                log.info("a batch of %d requests gave %s results for %d rows: each is predicted alone", len(batch),
                         _length(predictions), sum(r.rows for r in batch))
        except Exception as exc:  # one bad row must not fail its neighbours
            log.info("a batch of %d requests failed (%s): each is predicted alone", len(batch), exc)
        if parts is None:
            for request in batch:
                await self._alone(request)
            return
        for request, part in zip(batch, parts, strict=True):
            if not request.future.done():
                request.future.set_result(part)

    async def _alone(self, request: _Request) -> None:
        self.calls += 1
        try:
            result = await self._predict(request.X, request.size)
        except Exception as exc:  # the request's own error: its invoke answers it (500 model error, ...)
            if not request.future.done():
                request.future.set_exception(exc)
            return
        if not request.future.done():
            request.future.set_result(result)


def _length(predictions: Any) -> str:
    try:
        return str(len(predictions))
    except TypeError:
        return "no countable"
