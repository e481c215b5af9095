"""The golden cases (conformance/golden, D5) run in-process against the Python runtime.

Training cases run ``train.run`` on a temporary ``/opt/ml``; serving setups are trained once the
same way, then every serving case loads the model with the case's environment and sends its
request through the real ASGI app (the routing table, codecs and transport), no HTTP socket.
Cases listed in ``expected-differences/python.json`` are strict xfails carrying the reason.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rosetta_runtime import train
from rosetta_runtime.adapter import load_adapter
from rosetta_runtime.app import App
from rosetta_runtime.codecs import parse_media_type
from rosetta_runtime.paths import ServingSettings
from rosetta_runtime.routes import Service

GOLDEN = Path(__file__).resolve().parents[3] / "conformance" / "golden"
MODELS = GOLDEN / "models" / "python"
SERVING = json.loads((GOLDEN / "serving.json").read_text())
TRAINING = json.loads((GOLDEN / "training.json").read_text())
EXPECTED: dict[str, str] = json.loads((GOLDEN / "expected-differences" / "python.json").read_text())
#: variables that change how the runtime trains or serves: none leaks in from the test's own environment
RUNTIME_ENV = re.compile(r"^(SAGEMAKER_|ROSETTA_|SM_)")


def params(cases: list[dict[str, Any]]) -> list[Any]:
    return [pytest.param(c, id=c["id"], marks=[pytest.mark.xfail(strict=True, reason=EXPECTED[c["id"]])]
                         if c["id"] in EXPECTED else []) for c in cases]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dict[str, str]], None]]:
    """Only the given runtime variables are set; os.environ is restored afterwards (training sets SM_*)."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if RUNTIME_ENV.match(name):
            monkeypatch.delenv(name)

    def set_env(env: dict[str, str]) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    yield set_env
    os.environ.clear()
    os.environ.update(saved)
    sys.modules.pop("rosetta_user_model", None)


def write_job(root: Path, job: dict[str, Any]) -> None:
    """An /opt/ml as SageMaker lays it out for a training job (README: training.json)."""
    config = root / "input" / "config"
    for sub in (config, root / "input" / "data", root / "model", root / "output"):
        sub.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(job["hyperparameters"]))
    channels: dict[str, dict[str, str]] = job["channels"]
    default_config = {name: {"ContentType": "text/csv", "TrainingInputMode": "File",
                             "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
                      for name in channels}
    (config / "inputdataconfig.json").write_text(json.dumps(job.get("inputdataconfig", default_config)))
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}))
    for name, files in channels.items():
        (root / "input" / "data" / name).mkdir(parents=True, exist_ok=True)
        for rel, text in files.items():
            path = root / "input" / "data" / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


def run_training(root: Path, job: dict[str, Any], set_env: Callable[[dict[str, str]], None]) -> int:
    set_env({"ROSETTA_ML_ROOT": str(root), "ROSETTA_CODE_DIR": str(MODELS / job["program"])})
    sys.modules.pop("rosetta_user_model", None)
    write_job(root, job)
    return train.run()


# -- comparison ------------------------------------------------------------------------------------

def same(expected: Any, got: Any) -> bool:
    """Parsed values: numbers within a relative 1e-9, booleans only as booleans, strings exactly."""
    if isinstance(expected, bool) or expected is None:
        return got is expected
    if isinstance(expected, int | float):
        return isinstance(got, int | float) and not isinstance(got, bool) and math.isclose(got, expected,
                                                                                               rel_tol=1e-9)
    if isinstance(expected, list):
        return isinstance(got, list) and len(got) == len(expected) and all(map(same, expected, got))
    if isinstance(expected, dict):
        return isinstance(got, dict) and got.keys() == expected.keys() and all(
            same(v, got[k]) for k, v in expected.items())
    return bool(expected == got)


def _field(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def records(body: bytes, media_type: str) -> list[list[Any]]:
    """The output records of a response body (README: one per CSV line / JSON element / JSON Lines line)."""
    text = body.decode("utf-8")
    as_record: Callable[[Any], list[Any]] = lambda v: v if isinstance(v, list) else [v]  # noqa: E731
    if media_type == "text/csv":
        return [[_field(f) for f in line.split(",")] for line in text.removesuffix("\n").split("\n")] if text else []
    if media_type == "application/json":
        return [as_record(v) for v in json.loads(text)["predictions"]]
    if media_type == "application/jsonlines":
        return [as_record(json.loads(line)) for line in text.removesuffix("\n").split("\n")] if text else []
    raise AssertionError(f"no record format for {media_type}")


def request_body(request: dict[str, Any]) -> bytes:
    if "body_b64" in request:
        body = base64.b64decode(request["body_b64"])
    else:
        body = request.get("body", "").encode("utf-8")
    return body * int(request.get("body_repeat", 1))


async def asgi_call(app: App, request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """One request through the ASGI app with exactly the case's headers plus Content-Length."""
    body = request_body(request)
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request["headers"].items()]
    if body or request["method"] not in ("GET", "HEAD"):
        headers.append((b"content-length", str(len(body)).encode()))
    scope = {"type": "http", "method": request["method"], "path": request["path"], "headers": headers}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, = (m for m in sent if m["type"] == "http.response.start")
    out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, out


def check_response(expect: dict[str, Any], status: int, headers: dict[str, str], body: bytes) -> None:
    shown = body[:300]
    assert status == expect["status"], f"status {status}, body {shown!r}"
    media = parse_media_type(headers.get("content-type", ""))
    if "message" in expect:
        assert body == (expect["message"] + "\n").encode(), f"body {shown!r}"
        assert media == ("text/plain", {"charset": "utf-8"}), headers.get("content-type")
    if "message_pattern" in expect:
        first = body.decode("utf-8").split("\n")[0]
        assert re.fullmatch(expect["message_pattern"], first), f"first line {first!r}"
    if "content_type" in expect:
        assert media[0] == expect["content_type"].lower(), headers.get("content-type")
    for name, value in expect.get("headers", {}).items():
        assert headers.get(name.lower()) == value, f"header {name}: {headers.get(name.lower())!r}"
    if "body" in expect:
        assert body == expect["body"].encode("utf-8"), f"body {shown!r}"
    if "records" in expect or "record_count" in expect:
        got = records(body, media[0])
        if "record_count" in expect:
            assert len(got) == expect["record_count"]
        if "records" in expect:
            assert same(expect["records"], got), f"records {got[:20]}"
    if "json" in expect:
        doc = json.loads(body)
        for key, value in expect["json"].items():
            assert same(value, doc.get(key)), f"{key}: {doc.get(key)!r}"


# -- serving ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Setup name → its /opt/ml root, each trained once per module (README: serving.json)."""
    roots: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in roots:
            root = tmp_path_factory.mktemp(f"setup-{name}")
            with pytest.MonkeyPatch.context() as mp:
                saved = dict(os.environ)
                for var in [v for v in os.environ if RUNTIME_ENV.match(v)]:
                    mp.delenv(var)
                try:
                    code = run_training(root, SERVING["setups"][name], lambda env: [mp.setenv(k, v)
                                                                                    for k, v in env.items()])
                finally:
                    os.environ.clear()
                    os.environ.update(saved)
                    sys.modules.pop("rosetta_user_model", None)
            failure = root / "output" / "failure"
            assert code == 0, failure.read_text() if failure.exists() else code
            roots[name] = root
        return roots[name]

    return get


@pytest.mark.parametrize("case", params(SERVING["cases"]))
def test_serving(case: dict[str, Any], trained: Callable[[str], Path],
                 clean_env: Callable[[dict[str, str]], None]) -> None:
    setup = SERVING["setups"][case["setup"]]
    root = trained(case["setup"])
    clean_env({**case.get("env", {}), "ROSETTA_ML_ROOT": str(root),
               "ROSETTA_CODE_DIR": str(MODELS / setup["program"])})
    adapter = load_adapter()
    adapter.load(root / "model")
    app = App(Service(adapter, ServingSettings.from_env()))
    check_response(case["expect"], *asyncio.run(asgi_call(app, case["request"])))


# -- training --------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", params(TRAINING["cases"]))
def test_training(case: dict[str, Any], tmp_path: Path, clean_env: Callable[[dict[str, str]], None]) -> None:
    root = tmp_path / "ml"
    code = run_training(root, case, clean_env)
    expect = case["expect"]
    failure = root / "output" / "failure"
    reason = failure.read_text().split("\n")[0] if failure.exists() else None
    assert code == expect["exit"], reason
    if "failure" in expect:
        assert reason == expect["failure"]
    if "failure_pattern" in expect:
        assert reason is not None and re.fullmatch(expect["failure_pattern"], reason), reason
    for key, file in (("seen", "output/data/seen.json"), ("rosetta_json", "model/rosetta.json")):
        if key in expect:
            doc = json.loads((root / file).read_text())
            for name, value in expect[key].items():
                assert same(value, doc.get(name)), f"{key}.{name}: {doc.get(name)!r}, expected {value!r}"
    for rel in expect.get("files", []):
        assert (root / rel).exists(), rel


# -- the files themselves --------------------------------------------------------------------------

def test_case_files_are_well_formed() -> None:
    """Ids unique, setups and programs exist, every expected difference names a case and gives a reason."""
    ids = [c["id"] for c in SERVING["cases"] + TRAINING["cases"]]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    for c in SERVING["cases"]:
        assert c["setup"] in SERVING["setups"], c["id"]
    for job in list(SERVING["setups"].values()) + TRAINING["cases"]:
        assert (MODELS / job["program"] / "model.py").is_file(), job["program"]
    for lang in ("python", "r", "julia"):
        file = GOLDEN / "expected-differences" / f"{lang}.json"
        if file.exists():
            for case_id, reason in json.loads(file.read_text()).items():
                assert case_id in ids, f"{lang}: unknown case {case_id}"
                assert isinstance(reason, str) and reason.strip(), f"{lang}: {case_id} has no reason"
