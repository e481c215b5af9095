"""The routing table and /invocations semantics, in-process through the real ASGI app (S-*, B-*)."""

from __future__ import annotations

import asyncio
import json
import pickle
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from rosetta_runtime.adapter import load_adapter
from rosetta_runtime.app import App
from rosetta_runtime.paths import MIB, ServingSettings
from rosetta_runtime.routes import INLINE_STRIKES, Service
from rosetta_runtime.user import load_user_module

SOURCE = """
import numpy as np

class Toy:
    n_features_in_ = 3
    def __init__(self, scale):
        self.scale = scale

def fit(data, hp):
    return Toy(1.0)

def predict(model, X):
    if X[0, 0] == 666:
        raise RuntimeError("the model broke")
    if X[0, 0] == 777:
        return X[:1].sum(axis=1)
    return X.sum(axis=1) * model.scale
"""


def make_client(ml: Path, user_code: Callable[[str], Path], scale: float = 2.0) -> httpx.AsyncClient:
    """A model dir as training writes it, loaded by the real adapter, behind the real ASGI app."""
    user_code(SOURCE)
    user = load_user_module()
    (ml / "model" / "model.pkl").write_bytes(pickle.dumps(user.Toy(scale)))
    (ml / "model" / "rosetta.json").write_text(json.dumps({"runtime": "python", "n_features": 3}))
    adapter = load_adapter()
    adapter.load(ml / "model")
    app = App(Service(adapter, ServingSettings.from_env()))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
def client(ml: Path, user_code: Callable[[str], Path]) -> httpx.AsyncClient:
    return make_client(ml, user_code)


def call(client: httpx.AsyncClient, method: str, path: str, **kw: object) -> httpx.Response:
    return asyncio.run(client.request(method, path, **kw))  # type: ignore[arg-type]


def test_ping_and_execution_parameters(client: httpx.AsyncClient) -> None:
    assert call(client, "GET", "/ping").status_code == 200
    r = call(client, "GET", "/execution-parameters")
    body = r.json()
    assert r.status_code == 200 and body["BatchStrategy"] == "MULTI_RECORD" and body["MaxPayloadInMB"] == 2
    assert body["MaxConcurrentTransforms"] * body["MaxPayloadInMB"] <= 100


@pytest.mark.parametrize(("env", "advertised", "limit_mb"), [("1", 1, 6), ("20", 20, 20), ("60", 60, 60)])
def test_max_payload_variable_sets_advertised_and_limit(monkeypatch: pytest.MonkeyPatch, env: str, advertised: int,
                                                        limit_mb: int) -> None:
    monkeypatch.setenv("SAGEMAKER_MAX_PAYLOAD_IN_MB", env)
    monkeypatch.setenv("SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", "4")
    settings = ServingSettings.from_env()
    assert settings.max_body_bytes == limit_mb * MIB  # the body limit never drops below 6 MiB (S-12)
    body = json.loads(asyncio.run(Service(None, settings).execution_parameters(None)).body)  # type: ignore[arg-type]
    assert body["MaxPayloadInMB"] == advertised
    assert body["MaxConcurrentTransforms"] == min(4, 100 // advertised)  # B-05: product ≤ 100


def test_ping_503_until_loaded() -> None:
    app = App(Service(None, ServingSettings.from_env()))
    c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    r = call(c, "GET", "/ping")
    assert r.status_code == 503 and r.text == "model is loading\n"
    assert call(c, "POST", "/invocations", content=b"1,2,3").status_code == 503


@pytest.mark.parametrize("path, method, status", [
    ("/nope", "GET", 404), ("/ping/", "GET", 404), ("/invocations", "GET", 405), ("/ping", "POST", 405),
    ("/execution-parameters", "DELETE", 405),
])
def test_unknown_paths_and_methods(client: httpx.AsyncClient, path: str, method: str, status: int) -> None:
    r = call(client, method, path)
    assert r.status_code == status and r.text.endswith("\n") and len(r.text) < 100
    if status == 405:
        assert r.headers["allow"]


def test_invocations_csv_default_accept(client: httpx.AsyncClient) -> None:
    r = call(client, "POST", "/invocations", content=b"1,2,3\n4,5,6\n", headers={"Content-Type": "text/csv"})
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv"
    assert r.text == "12.0\n30.0\n"


@pytest.mark.parametrize("ctype, accept, body, expected_type", [
    ("text/csv; charset=utf-8", "application/json", b"1,2,3", "application/json"),
    ("application/json", None, b"[[1,2,3]]", "application/json"),
    ("application/jsonlines", "*/*", b"[1,2,3]\n", "application/jsonlines"),
    ("application/json", "text/csv", b'{"instances": [[1,2,3]]}', "text/csv"),
])
def test_content_types(client: httpx.AsyncClient, ctype: str, accept: str | None, body: bytes,
                       expected_type: str) -> None:
    headers = {"Content-Type": ctype, **({"Accept": accept} if accept else {})}
    r = call(client, "POST", "/invocations", content=body, headers=headers)
    assert r.status_code == 200 and r.headers["content-type"] == expected_type


def test_default_accept_env(ml: Path, user_code: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/json")
    c = make_client(ml, user_code, scale=1.0)
    r = call(c, "POST", "/invocations", content=b"1,2,3", headers={"Content-Type": "text/csv"})
    assert r.json() == {"predictions": [6.0]}


@pytest.mark.parametrize("headers, body, status, message", [
    ({"Content-Type": "text/plain"}, b"1,2,3", 415, "unsupported Content-Type 'text/plain'; accepted: text/csv"),
    ({"Content-Type": "text/csv", "Accept": "text/html"}, b"1,2,3", 406, "cannot produce 'text/html'"),
    ({"Content-Type": "text/csv"}, b"1,2", 400, "row 1 has 2 columns, expected 3"),
    ({"Content-Type": "text/csv"}, b"1,x,3", 400, "row 1: 'x' is not a number"),
    ({"Content-Type": "text/csv"}, b"", 400, "empty payload"),
    ({"Content-Type": "application/json"}, b"[[1,2", 400, "malformed JSON"),
    ({"Content-Type": "text/csv"}, b"666,0,0", 500, "model error: the model broke"),
    ({"Content-Type": "text/csv"}, b"777,0,0\n1,2,3", 500, "model error: predict returned 1 results for 2 records"),
])
def test_errors_are_short_text(client: httpx.AsyncClient, headers: dict[str, str], body: bytes, status: int,
                               message: str) -> None:
    r = call(client, "POST", "/invocations", content=body, headers=headers)
    assert r.status_code == status
    assert r.headers["content-type"].startswith("text/plain") and r.text.startswith(message)
    assert "Traceback" not in r.text and len(r.content) < 300


def test_body_limit(client: httpx.AsyncClient) -> None:
    row = b"1,2,3\n"
    ok = row * ((6 * MIB - 10_000) // len(row))
    r = call(client, "POST", "/invocations", content=ok, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200 and r.text.count("\n") == ok.count(b"\n")
    big = row * ((6 * MIB) // len(row) + 10)
    r = call(client, "POST", "/invocations", content=big, headers={"Content-Type": "text/csv"})
    assert r.status_code == 413 and r.text.startswith("payload too large:")


def test_unknown_headers_ignored(client: httpx.AsyncClient) -> None:  # S-10
    r = call(client, "POST", "/invocations", content=b"1,2,3",
             headers={"Content-Type": "text/csv", "X-Amzn-SageMaker-Custom-Attributes": "x", "X-Foo": "bar"})
    assert r.status_code == 200 and r.text == "12.0\n"


SLOW = SOURCE.replace("    if X[0, 0] == 666:",
                      "    if X[0, 0] < 0:\n        import time\n        time.sleep(-X[0, 0])\n    if X[0, 0] == 666:")


def _service(ml: Path, user_code: Callable[[str], Path]) -> Service:
    user_code(SLOW)
    user = load_user_module()
    (ml / "model" / "model.pkl").write_bytes(pickle.dumps(user.Toy(1.0)))
    adapter = load_adapter()
    adapter.load(ml / "model")
    return Service(adapter, ServingSettings.from_env())


def test_ping_answers_while_a_slow_prediction_runs(ml: Path, user_code: Callable[[str], Path]) -> None:  # S-07
    service = _service(ml, user_code)
    c = httpx.AsyncClient(transport=httpx.ASGITransport(app=App(service)), base_url="http://test")

    async def both() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        slow = asyncio.create_task(c.post("/invocations", content=b"-0.5,0,0"))
        await asyncio.sleep(0.05)
        assert (await c.get("/ping")).status_code == 200
        ping_at = loop.time() - t0
        assert (await slow).status_code == 200
        return ping_at, loop.time() - t0

    ping_at, slow_done = asyncio.run(both())
    assert ping_at < 0.3 < slow_done


def test_inline_prediction_backs_off_after_slow_calls_in_a_row(ml: Path, user_code: Callable[[str], Path]) -> None:
    service = _service(ml, user_code)
    service.fast_model = True  # as the server sets it after a fast warm-up with ≥ 2 workers
    c = httpx.AsyncClient(transport=httpx.ASGITransport(app=App(service)), base_url="http://test")
    assert call(c, "POST", "/invocations", content=b"1,2,3").status_code == 200
    assert service.fast_model
    for _ in range(INLINE_STRIKES - 1):  # slow, fast, slow...: one slow call can be a pause
        assert call(c, "POST", "/invocations", content=b"-0.1,0,0").status_code == 200
    assert call(c, "POST", "/invocations", content=b"1,2,3").status_code == 200
    assert service.fast_model
    for _ in range(INLINE_STRIKES):
        assert call(c, "POST", "/invocations", content=b"-0.1,0,0").status_code == 200
    assert not service.fast_model  # the next small request goes to the predict thread
    service.fast_model = True
    assert call(c, "POST", "/invocations", content=b"-0.6,0,0").status_code == 200
    assert not service.fast_model  # one call 10x over the limit is enough
