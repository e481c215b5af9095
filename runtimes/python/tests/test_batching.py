"""Adaptive batching (D9), in-process through the real ASGI app (routing table, codecs, transport).

The test model answers, per row, ``[id, sum(row) * scale]`` where the id is the row's first value, so a
response shows whose rows it carries; it records every predict call (the ids it got, start and end
times), so a test sees which requests shared a call. ``-999`` in a row raises ``boom``, ``-1`` drops the
last result (the golden fixture's two failures). A row whose id is in ``HOLD`` blocks its call until
the test releases it: the tests control what is queued while a prediction runs, without sleeps.

Predictions run on the worker's predict thread (as in a server with one worker), so requests sent
together queue up behind the one predicting. The real server with two workers and concurrent HTTP
clients is ``test_batching_server.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from rosetta_runtime import rowwise
from rosetta_runtime.adapter import load_adapter
from rosetta_runtime.app import App
from rosetta_runtime.batching import Batcher, is_rowwise, split
from rosetta_runtime.multimodel import ModelStore, Registry
from rosetta_runtime.paths import ServingSettings
from rosetta_runtime.routes import Service

MODEL = '''
import json, threading, time
import numpy as np
{import_line}

CALLS = []  # per predict call: (ids, start, end)
HOLD = {{}}  # id -> (entered, release) threading.Events

def fit(data, hp):
    raise NotImplementedError("serving only")

def load(model_dir):
    return json.loads((model_dir / "params.json").read_text())

{decorator}
def predict(model, X):
    start = time.monotonic()
    for i in X[:, 0].tolist():
        if i in HOLD:
            entered, release = HOLD[i]
            entered.set()
            release.wait(30)
    try:
        if (X == -999).any():
            raise ValueError("boom")
        out = np.column_stack([X[:, 0], X.sum(axis=1) * model["scale"]])
        return out[:-1] if (X == -1).any() else out
    finally:
        CALLS.append((X[:, 0].tolist(), start, time.monotonic()))
'''
ROWWISE = MODEL.format(import_line="from rosetta_runtime import rowwise", decorator="@rowwise")
UNDECLARED = MODEL.format(import_line="", decorator="")
RUNTIME_ENV = re.compile(r"^(SAGEMAKER_|ROSETTA_|SM_)")


def model_dir(root: Path, scale: float = 1.0, n_features: int | None = 3) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.json").write_text(json.dumps({"scale": scale}))
    (root / "rosetta.json").write_text(json.dumps({"runtime": "python", "features": None, "n_features": n_features}))
    return root


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, str]], None]:
    for name in [n for n in os.environ if RUNTIME_ENV.match(n) and n != "ROSETTA_CODE_DIR"]:  # user_code's
        monkeypatch.delenv(name)

    def set_env(values: dict[str, str]) -> None:
        for name in [n for n in os.environ if n.startswith("ROSETTA_BATCH")]:
            monkeypatch.delenv(name)
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_env


class Server:
    """One worker's app around the test model, and the model's module (its CALLS and HOLD)."""

    def __init__(self, folder: Path) -> None:
        adapter = load_adapter()
        adapter.load(folder)
        self.module: ModuleType = adapter.module  # type: ignore[attr-defined]
        self.service = Service(adapter, ServingSettings.from_env())
        self.app = App(self.service)

    @property
    def calls(self) -> list[tuple[list[float], float, float]]:
        return self.module.CALLS  # type: ignore[no-any-return]


@pytest.fixture
def serve(tmp_path: Path, user_code: Callable[[str], Path], env: Callable[[dict[str, str]], None]
          ) -> Callable[..., Server]:
    def make(source: str = ROWWISE, n_features: int | None = 3, **settings: str) -> Server:
        user_code(source)
        env(settings)
        sys.modules.pop("rosetta_user_model", None)
        return Server(model_dir(tmp_path / f"model-{len(os.listdir(tmp_path))}", n_features=n_features))

    return make


# -- requests ------------------------------------------------------------------------------------------

Request = tuple[str, str, bytes, dict[str, str]]  # method, path, body, headers


def csv(rows: list[list[float]], accept: str | None = None, header: bool = False) -> Request:
    body = ("a,b,c\n" if header else "") + "".join(",".join(repr(v) for v in r) + "\n" for r in rows)
    headers = {"Content-Type": "text/csv; header=present" if header else "text/csv"}
    if accept:
        headers["Accept"] = accept
    return "POST", "/invocations", body.encode(), headers


def json_rows(rows: list[list[float]], accept: str | None = None, lines: bool = False) -> Request:
    if lines:
        body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    else:
        body = json.dumps({"instances": rows}).encode()
    headers = {"Content-Type": "application/jsonlines" if lines else "application/json"}
    if accept:
        headers["Accept"] = accept
    return "POST", "/invocations", body, headers


async def call(app: App, request: Request) -> tuple[int, str | None, bytes]:
    method, path, body, headers = request
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
             + [(b"content-length", str(len(body)).encode())]}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, = (m for m in sent if m["type"] == "http.response.start")
    ctype = dict(start["headers"]).get(b"content-type")
    return start["status"], ctype.decode() if ctype else None, b"".join(m.get("body", b"") for m in sent[1:])


def together(app: App, requests: list[Request]) -> list[tuple[int, str | None, bytes]]:
    """All requests at once, as concurrent connections to one worker."""
    async def run() -> list[tuple[int, str | None, bytes]]:
        return await asyncio.gather(*(call(app, r) for r in requests))

    return asyncio.run(run())


def one_by_one(app: App, requests: list[Request]) -> list[tuple[int, str | None, bytes]]:
    async def run() -> list[tuple[int, str | None, bytes]]:
        return [await call(app, r) for r in requests]

    return asyncio.run(run())


def mixed_requests(seed: int, n: int) -> list[Request]:
    """Good and bad requests of every kind; every row's first value is an id unique to its request."""
    rng = np.random.default_rng(seed)
    requests: list[Request] = []
    next_id = 1000
    for i in range(n):
        kind = i % 20  # 5 and 6 reach predict and fail there: most batches have neither
        rows_n = int(rng.integers(1, 6))
        ids = [float(next_id + k) for k in range(rows_n)]
        next_id += 100
        rows = [[rid, round(float(rng.normal()), 3), round(float(rng.normal()), 3)] for rid in ids]
        if kind == 0:
            requests.append(csv(rows))
        elif kind == 1:
            requests.append(csv(rows, accept="application/json"))
        elif kind == 2:
            requests.append(json_rows(rows, accept="application/jsonlines"))
        elif kind == 3:
            requests.append(json_rows(rows, lines=True, accept="text/csv"))
        elif kind == 4:
            requests.append(csv(rows, header=True))
        elif kind == 5:  # a model error in one row: 500 for this request only
            rows[-1][1] = -999.0
            requests.append(csv(rows))
        elif kind == 6:  # one result short: 500 for this request only
            rows[0][2] = -1.0
            requests.append(csv(rows))
        elif kind == 7:  # not a number: 400 before it joins a batch
            requests.append(("POST", "/invocations", f"{ids[0]},x,1\n".encode(), {"Content-Type": "text/csv"}))
        elif kind == 8:  # wrong width: 400
            requests.append(("POST", "/invocations", f"{ids[0]},1\n".encode(), {"Content-Type": "text/csv"}))
        elif kind == 9:  # no codec: 415
            requests.append(("POST", "/invocations", b"1,2,3\n", {"Content-Type": "application/x-nope"}))
        elif kind == 10:  # nothing acceptable: 406
            requests.append(csv(rows, accept="image/png"))
        elif kind == 11:  # bigger than ROSETTA_BATCH_MAX_ROWS: alone
            big = [[float(next_id + k), 0.5, 0.25] for k in range(40)]
            next_id += 100
            requests.append(csv(big))
        elif kind % 2:
            requests.append(csv(rows, accept="*/*"))
        else:
            requests.append(csv(rows))
    return requests


def ids_of(call_ids: list[float]) -> set[int]:
    """The requests (id // 100) whose rows a predict call got."""
    return {int(i) // 100 for i in call_ids}


# -- behaviour -----------------------------------------------------------------------------------------

def test_concurrent_mixed_requests_answer_exactly_as_unbatched(serve: Callable[..., Server]) -> None:
    """Differential: 200 good and bad requests sent together to a batching worker get, byte for byte,
    the answers the same requests get one by one from a worker with batching off; most calls really
    were shared, each response carries exactly its own rows in order, and a failing request failed alone."""
    requests = mixed_requests(1, 200)
    reference = serve(ROSETTA_BATCHING="off")
    expected = one_by_one(reference.app, requests)
    assert reference.service.predictor and reference.service.predictor.batcher is None

    batching = serve(ROSETTA_BATCH_MAX_ROWS="8")
    got = together(batching.app, requests)
    for i, (request, want, have) in enumerate(zip(requests, expected, got, strict=True)):
        assert have == want, f"request {i} ({request[3]}): {have!r} != {want!r}"
    statuses = [status for status, _, _ in got]
    assert {200, 400, 406, 415, 500} <= set(statuses)
    predicted = sum(1 for i, (status, _, _) in enumerate(got) if status == 200 or i % 20 in (5, 6))
    assert len(batching.calls) < 0.8 * predicted, "predict calls were not shared"  # retries included
    assert len(reference.calls) == predicted
    assert all(len(c[0]) <= 8 or len(c[0]) == 40 for c in batching.calls)  # MAX_ROWS=8; a 40-row request alone
    # rows never cross requests: each CSV answer's first column is its own ids, in order
    for (_, _, body, headers), (status, ctype, out) in zip(requests, got, strict=True):
        if status == 200 and ctype == "text/csv" and headers["Content-Type"] == "text/csv":
            sent = [float(line.split(",")[0]) for line in body.decode().splitlines()]
            assert [float(line.split(",")[0]) for line in out.decode().splitlines()] == sent
    # a bad row's request got its 500; every other request of the batch it joined got its 200
    errors = [got[i] for i in range(len(requests)) if i % 20 in (5, 6)]
    assert {e[0] for e in errors} == {500}
    assert {e[2] for e in errors if b"boom" in e[2]} == {b"model error: boom\n"}


def test_inline_predictions_batch_the_requests_that_arrived_together(serve: Callable[..., Server]) -> None:
    """A fast model predicts on the event loop (2+ workers): requests parsed in the same turn still
    share one call (the idle leader lets them join before predicting), answered as unbatched."""
    requests = [csv([[float(100 * k), 1.0, 2.0]]) for k in range(1, 9)]
    server = serve()
    server.service.fast_model = True
    answers = together(server.app, requests)
    assert [a[2] for a in answers] == [f"{100.0 * k!r},{(100 * k + 3) * 1.0!r}\n".encode() for k in range(1, 9)]
    assert [len(c[0]) for c in server.calls] == [8]


def test_a_model_error_in_a_batch_fails_only_its_request(serve: Callable[..., Server]) -> None:
    """A held call keeps the worker busy while three requests queue; they go as one batch, which fails
    on the -999 row and on the short result; each is then predicted alone: only the bad ones fail."""
    server = serve()
    entered, release = threading.Event(), threading.Event()
    server.module.HOLD[1.0] = (entered, release)
    queued = [csv([[2.0, 1.0, 1.0]]), csv([[3.0, -999.0, 1.0]]), csv([[4.0, 2.0, 2.0]]),
              csv([[5.0, 1.0, -1.0], [6.0, 1.0, 1.0]])]

    async def run() -> list[tuple[int, str | None, bytes]]:
        first = asyncio.ensure_future(call(server.app, csv([[1.0, 0.0, 0.0]])))
        while not entered.is_set():  # the first request holds the predict thread
            await asyncio.sleep(0.001)
        rest = [asyncio.ensure_future(call(server.app, r)) for r in queued]
        await asyncio.sleep(0.01)  # let them be decoded and queued
        release.set()
        return [await first, *[await r for r in rest]]

    answers = run_and_check_not_hanging(run)
    assert answers[0] == (200, "text/csv", b"1.0,1.0\n")
    assert answers[1] == (200, "text/csv", b"2.0,4.0\n")
    assert answers[2] == (500, "text/plain; charset=utf-8", b"model error: boom\n")
    assert answers[3] == (200, "text/csv", b"4.0,8.0\n")
    assert answers[4] == (500, "text/plain; charset=utf-8", b"model error: predict returned 1 results for 2 records\n")
    calls = [c[0] for c in server.calls]
    assert calls[0] == [1.0]
    assert calls[1] == [2.0, 3.0, 4.0, 5.0, 6.0]  # one batch of the four queued requests ...
    assert calls[2:] == [[2.0], [3.0], [4.0], [5.0, 6.0]]  # ... failed: each alone, in order


def run_and_check_not_hanging(run: Callable[[], Any], timeout: float = 30) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(run(), timeout)

    return asyncio.run(bounded())


def hold_then_queue(server: Server, queued: list[Request]) -> tuple[list[tuple[int, str | None, bytes]], float]:
    """Request id 1 holds the predict thread; ``queued`` arrive meanwhile; returns the answers and when
    the held call was released."""
    entered, release = threading.Event(), threading.Event()
    server.module.HOLD[1.0] = (entered, release)
    released = 0.0

    async def run() -> list[tuple[int, str | None, bytes]]:
        nonlocal released
        first = asyncio.ensure_future(call(server.app, csv([[1.0, 0.0, 0.0]])))
        while not entered.is_set():
            await asyncio.sleep(0.001)
        rest = [asyncio.ensure_future(call(server.app, r)) for r in queued]
        await asyncio.sleep(0.01)
        released = time.monotonic()
        release.set()
        return [await first, *[await r for r in rest]]

    answers = run_and_check_not_hanging(run)
    return answers, released


def test_the_wait_bound_holds(serve: Callable[..., Server]) -> None:
    """ROSETTA_BATCH_WAIT_MS bounds how long a batch formed after a prediction waits to fill: with one
    request queued and nothing else coming, it starts WAIT_MS after the running call ends, not later."""
    server = serve(ROSETTA_BATCH_WAIT_MS="150")
    answers, _ = hold_then_queue(server, [csv([[2.0, 1.0, 1.0]])])
    assert [a[0] for a in answers] == [200, 200]
    (_, _, held_end), (_, queued_start, _) = server.calls[0], server.calls[1]
    waited = queued_start - held_end
    assert 0.14 <= waited <= 0.15 + 0.35, waited  # the wait, plus a loaded machine's scheduling


def test_no_wait_by_default_and_none_when_idle(serve: Callable[..., Server]) -> None:
    """WAIT_MS=0 (the default): the queued batch starts as soon as the running call ends. An idle
    worker predicts at once even with a long WAIT_MS, and a batch that reaches MAX_ROWS leaves at once."""
    server = serve()
    hold_then_queue(server, [csv([[2.0, 1.0, 1.0]])])
    (_, _, held_end), (_, queued_start, _) = server.calls[0], server.calls[1]
    assert queued_start - held_end < 0.1

    server = serve(ROSETTA_BATCH_WAIT_MS="20000", ROSETTA_BATCH_MAX_ROWS="2")
    t0 = time.monotonic()
    assert one_by_one(server.app, [csv([[7.0, 1.0, 1.0]])]) == [(200, "text/csv", b"7.0,9.0\n")]
    assert time.monotonic() - t0 < 5  # not 20 s: an idle worker never waits
    answers, released = hold_then_queue(server, [csv([[2.0, 1.0, 1.0]]), csv([[3.0, 1.0, 1.0]])])
    assert [a[0] for a in answers] == [200, 200, 200]
    assert [c[0] for c in server.calls[1:]] == [[1.0], [2.0, 3.0]]  # full at 2 rows: left without waiting
    assert server.calls[2][1] - released < 5


def test_batches_never_exceed_max_rows(serve: Callable[..., Server]) -> None:
    """Queued requests of 3 rows with MAX_ROWS=7: batches of 2 requests (6 rows), in arrival order."""
    server = serve(ROSETTA_BATCH_MAX_ROWS="7")
    queued = [csv([[float(10 * k + j), 1.0, 1.0] for j in range(3)]) for k in range(2, 7)]
    answers, _ = hold_then_queue(server, queued)
    assert all(a[0] == 200 for a in answers)
    assert [len(c[0]) for c in server.calls[1:]] == [6, 6, 3]
    assert [c[0][0] for c in server.calls[1:]] == [20.0, 40.0, 60.0]


def test_only_the_same_width_is_stacked(serve: Callable[..., Server]) -> None:
    """Without a known width (n_features null) requests of 3 and 4 columns queue together but are
    predicted in separate calls, each width in arrival order."""
    server = serve(n_features=None)
    queued = [csv([[2.0, 1.0, 1.0]]), csv([[3.0, 1.0, 1.0, 1.0]]), csv([[4.0, 1.0, 1.0]]), csv([[5.0, 1.0, 1.0, 1.0]])]
    answers, _ = hold_then_queue(server, queued)
    assert [a[2] for a in answers[1:]] == [b"2.0,4.0\n", b"3.0,6.0\n", b"4.0,6.0\n", b"5.0,8.0\n"]
    assert [c[0] for c in server.calls[1:]] == [[2.0, 4.0], [3.0, 5.0]]


@pytest.mark.parametrize("source, settings", [(UNDECLARED, {}), (ROWWISE, {"ROSETTA_BATCHING": "off"})],
                         ids=["not-declared", "declared-but-off"])
def test_no_batching_without_the_declaration_or_when_off(serve: Callable[..., Server], source: str,
                                                         settings: dict[str, str]) -> None:
    """The same concurrent load as the differential test: every predict call is one request's rows."""
    server = serve(source, **settings)
    assert server.service.predictor is not None and server.service.predictor.batcher is None
    requests = [csv([[float(100 * k + j), 1.0, 2.0] for j in range(k % 3 + 1)]) for k in range(1, 40)]
    answers = together(server.app, requests)
    assert all(a[0] == 200 for a in answers)
    assert len(server.calls) == len(requests)
    assert all(len(ids_of(c[0])) == 1 for c in server.calls)


def test_declaration_and_settings() -> None:
    @rowwise
    def predict(model: Any, X: np.ndarray) -> np.ndarray:
        return X

    def other(model: Any, X: np.ndarray) -> np.ndarray:
        return X

    assert is_rowwise(predict) and predict(None, np.ones(1)).tolist() == [1.0]  # the function is unchanged
    assert not is_rowwise(other) and not is_rowwise(None)
    assert split(np.arange(5), [2, 3]) is not None
    assert split(np.arange(5), [2, 2]) is None and split(3.0, [1]) is None
    assert [p.tolist() for p in split(np.arange(6).reshape(3, 2), [1, 2]) or []] == [[[0, 1]], [[2, 3], [4, 5]]]


@pytest.mark.parametrize("name, value, message", [
    ("ROSETTA_BATCHING", "yes", "ROSETTA_BATCHING must be 'auto', 'on' or 'off', got 'yes'"),
    ("ROSETTA_BATCH_MAX_ROWS", "0", "ROSETTA_BATCH_MAX_ROWS must be at least 1, got 0"),
    ("ROSETTA_BATCH_WAIT_MS", "-1", "ROSETTA_BATCH_WAIT_MS must be milliseconds ≥ 0, got '-1'"),
    ("ROSETTA_BATCH_WAIT_MS", "soon", "ROSETTA_BATCH_WAIT_MS must be a number, got 'soon'"),
])
def test_bad_settings_are_refused_at_start(env: Callable[[dict[str, str]], None], name: str, value: str,
                                           message: str) -> None:
    env({name: value})
    with pytest.raises(ValueError, match=re.escape(message)):
        ServingSettings.from_env()


def test_defaults(env: Callable[[dict[str, str]], None]) -> None:
    env({})
    s = ServingSettings.from_env()
    assert (s.batching, s.batch_max_rows, s.batch_wait_ms) == ("auto", 512, 0.0)
    env({"ROSETTA_BATCHING": "OFF", "ROSETTA_BATCH_WAIT_MS": "2.5"})
    s = ServingSettings.from_env()
    assert (s.batching, s.batch_wait_ms) == ("off", 2.5)


def test_a_client_gone_from_the_queue_is_skipped() -> None:
    """A queued request whose client went away (its task cancelled) is dropped from its batch."""
    seen: list[int] = []

    async def predict(X: Any, size: int) -> Any:
        seen.append(len(X))
        await asyncio.sleep(0.01)
        return X[:, 0]

    async def run() -> list[Any]:
        batcher = Batcher(predict, 100, 0.0)
        tasks = [asyncio.ensure_future(batcher.predict(np.full((1, 2), float(i)), 4)) for i in range(4)]
        await asyncio.sleep(0)  # all four queued; the first call starts
        tasks[2].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    out = asyncio.run(run())
    assert [o.tolist() for o in (out[0], out[1], out[3])] == [[0.0], [1.0], [3.0]]
    assert isinstance(out[2], asyncio.CancelledError)
    assert seen == [3]  # one call for the three that stayed


# -- multi-model mode (D6): batching never crosses models ----------------------------------------------

def test_multi_model_batches_never_cross_models(tmp_path: Path, user_code: Callable[[str], Path],
                                                env: Callable[[dict[str, str]], None]) -> None:
    """Two models of one program, invoked together: calls are shared within a model, never across
    (model a's requests carry ids 1xxx and scale 1, b's 2xxx and scale 3); every answer is its model's."""
    user_code(ROWWISE)
    env({"SAGEMAKER_MULTI_MODEL": "true", "ROSETTA_MME_MEMORY_MB": "1000", "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
         "ROSETTA_MME_STATE_DIR": str(tmp_path / "registry")})
    settings = ServingSettings.from_env()
    prototype = load_adapter()
    prototype.prepare()  # type: ignore[attr-defined]
    Registry(settings.mme_state_dir).reset()
    app = App(Service(None, settings, ModelStore(prototype, settings)))
    for name, scale in (("a", 1.0), ("b", 3.0)):
        model_dir(tmp_path / name / "model", scale)
    module = prototype.module  # type: ignore[attr-defined]

    def load(name: str) -> Request:
        body = json.dumps({"model_name": name, "url": str(tmp_path / name / "model")}).encode()
        return "POST", "/models", body, {"Content-Type": "application/json"}

    assert [a[0] for a in one_by_one(app, [load("a"), load("b")])] == [200, 200]
    module.CALLS.clear()  # the warm-up predictions
    requests: list[Request] = []
    for k in range(60):
        name, base = ("a", 1000) if k % 2 == 0 else ("b", 2000)
        _, _, body, headers = csv([[float(base + k), 1.0, 1.0]])
        requests.append(("POST", f"/models/{name}/invoke", body, headers))
    answers = together(app, requests)
    for k, (status, _, body) in enumerate(answers):
        base, scale = (1000, 1.0) if k % 2 == 0 else (2000, 3.0)
        assert (status, body) == (200, f"{float(base + k)!r},{(base + k + 2) * scale!r}\n".encode()), k
    for ids, _, _ in module.CALLS:
        assert len({int(i) // 1000 for i in ids}) == 1, ids  # one model's requests per call
    assert any(len(ids) > 1 for ids, _, _ in module.CALLS), "no call was shared"


@pytest.fixture(autouse=True)
def _no_leftover_module() -> Iterator[None]:
    yield
    sys.modules.pop("rosetta_user_model", None)
