"""The golden cases (conformance/golden, D5) run in-process against the Python runtime.

Training cases run ``train.run`` on a temporary ``/opt/ml`` (``runs`` cases several times on the
same one, D8); serving setups are trained once the same way, then every serving case loads the
model with the case's environment and sends its request through the real ASGI app (the routing
table, codecs and transport), no HTTP socket. Multi-model cases (D6) get a fresh service with an
empty registry each and send their steps in order through the same app; several worker processes
are proven by ``test_multimodel_server.py`` instead. Cases listed in
``expected-differences/python.json`` are strict xfails carrying the reason.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from rosetta_runtime import train
from rosetta_runtime.adapter import load_adapter
from rosetta_runtime.app import App
from rosetta_runtime.codecs import parse_media_type
from rosetta_runtime.multimodel import ModelStore, Registry
from rosetta_runtime.paths import MIB, ServingSettings
from rosetta_runtime.routes import Service

GOLDEN = Path(__file__).resolve().parents[3] / "conformance" / "golden"
MODELS = GOLDEN / "models" / "python"
SERVING = json.loads((GOLDEN / "serving.json").read_text())
TRAINING = json.loads((GOLDEN / "training.json").read_text())
MULTIMODEL = json.loads((GOLDEN / "multimodel.json").read_text())
EXPECTED: dict[str, str] = json.loads((GOLDEN / "expected-differences" / "python.json").read_text())
#: variables that change how the runtime trains or serves: none leaks in from the test's own environment
RUNTIME_ENV = re.compile(r"^(SAGEMAKER_|ROSETTA_|SM_)")
SINGLE_HOST = {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}


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
    resource = job.get("resourceconfig", SINGLE_HOST)  # null: no file at all (D7)
    if resource is not None:
        (config / "resourceconfig.json").write_text(json.dumps(resource))
    if "checkpointconfig" in job:  # D8: {ml} is the job's /opt/ml root
        checkpointconfig = substitute(job["checkpointconfig"], "{ml}", str(root))
        (config / "checkpointconfig.json").write_text(json.dumps(checkpointconfig))
    for name, files in channels.items():
        (root / "input" / "data" / name).mkdir(parents=True, exist_ok=True)
        for rel, text in files.items():
            path = root / "input" / "data" / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


def substitute(value: Any, placeholder: str, text: str) -> Any:
    """``value`` with ``placeholder`` replaced by ``text`` in every string, at any depth."""
    if isinstance(value, str):
        return value.replace(placeholder, text)
    if isinstance(value, list):
        return [substitute(v, placeholder, text) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, placeholder, text) for k, v in value.items()}
    return value


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
    raw_path, _, query = request["path"].partition("?")  # as uvicorn splits and decodes them
    scope = {"type": "http", "method": request["method"], "path": unquote(raw_path), "raw_path": raw_path.encode(),
             "query_string": query.encode(), "headers": headers}
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
    if "json" in expect or "json_keys" in expect:
        doc = json.loads(body)
        assert isinstance(doc, dict), f"body {shown!r}"
        for key, value in expect.get("json", {}).items():
            assert key in doc and same(value, doc[key]), f"{key}: {doc.get(key)!r}"
        if "json_keys" in expect:
            assert sorted(doc) == sorted(expect["json_keys"]), f"keys {sorted(doc)}"


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
                def set_env(env: dict[str, str]) -> None:
                    for key, value in env.items():
                        mp.setenv(key, value)

                try:
                    code = run_training(root, SERVING["setups"][name], set_env)
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


# -- multi-model mode (D6) -------------------------------------------------------------------------

NOT_A_MODEL = b"not a model\n"


@pytest.fixture(scope="module")
def models_roots(trained: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Multi-model setup name → its models root, every model at ``<root>/<name>/model`` (README: multimodel.json)."""
    roots: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in roots:
            root = tmp_path_factory.mktemp(f"models-{name}")
            for model, spec in MULTIMODEL["setups"][name]["models"].items():
                folder = root / model / "model"
                if spec.get("empty"):
                    folder.mkdir(parents=True)
                    continue
                shutil.copytree(trained(spec["setup"]) / "model", folder)
                if spec.get("corrupt"):
                    for file in folder.rglob("*"):
                        if file.is_file() and file.name != "rosetta.json":
                            file.write_bytes(NOT_A_MODEL)
                if "pad_mb" in spec:
                    with (folder / "padding.bin").open("wb") as fh:
                        fh.truncate(int(spec["pad_mb"]) * MIB)  # sparse: sizes are apparent sizes
            roots[name] = root
        return roots[name]

    return get


@pytest.mark.parametrize("case", params(MULTIMODEL["cases"]))
def test_multimodel(case: dict[str, Any], models_roots: Callable[[str], Path], tmp_path: Path,
                    clean_env: Callable[[dict[str, str]], None]) -> None:
    """A fresh service (no model, an empty registry), then the case's steps in order through the ASGI app."""
    setup = MULTIMODEL["setups"][case["setup"]]
    root = str(models_roots(case["setup"]))
    clean_env({**case["env"], "ROSETTA_CODE_DIR": str(MODELS / setup["program"]),
               "ROSETTA_MME_STATE_DIR": str(tmp_path / "registry")})
    settings = ServingSettings.from_env()
    assert settings.multi_model
    prototype = load_adapter()
    prototype.prepare()  # type: ignore[attr-defined]
    registry = Registry(settings.mme_state_dir)
    registry.reset()
    app = App(Service(None, settings, ModelStore(prototype, settings, registry)))

    async def steps() -> None:
        for i, step in enumerate(case["steps"]):
            request = {**step["request"], "body": substitute(step["request"].get("body", ""), "{models}", root)}
            try:
                check_response(substitute(step["expect"], "{models}", root), *await asgi_call(app, request))
            except AssertionError as exc:
                raise AssertionError(f"step {i + 1} ({request['method']} {request['path']}): {exc}") from exc

    asyncio.run(steps())


# -- training --------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", params(TRAINING["cases"]))
def test_training(case: dict[str, Any], tmp_path: Path, clean_env: Callable[[dict[str, str]], None]) -> None:
    """One run judged by ``expect``, or (D8) ``runs`` on the same /opt/ml, model/ and output/ cleared between."""
    root = tmp_path / "ml"
    runs = case.get("runs", [{"expect": case.get("expect")}])
    for i, run in enumerate(runs):
        if i:
            shutil.rmtree(root / "model")
            shutil.rmtree(root / "output")
            sys.modules.pop("rosetta_user_model", None)
        code = train.run() if i else run_training(root, case, clean_env)
        try:
            check_training(root, code, run["expect"])
        except AssertionError as exc:
            raise AssertionError(f"run {i + 1} of {len(runs)}: {exc}") from exc


def check_training(root: Path, code: int, expect: dict[str, Any]) -> None:
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
                got = doc[name] if name in doc else "<absent>"
                assert same(value, got), f"{key}.{name}: {got!r}, expected {value!r}"
    for rel in expect.get("files", []):
        assert (root / rel).exists(), rel


# -- the files themselves --------------------------------------------------------------------------

def test_case_files_are_well_formed() -> None:
    """Ids unique, setups and programs exist, every expected difference names a case and gives a reason."""
    ids = [c["id"] for c in SERVING["cases"] + TRAINING["cases"] + MULTIMODEL["cases"]]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    for c in SERVING["cases"]:
        assert c["setup"] in SERVING["setups"], c["id"]
    for job in list(SERVING["setups"].values()) + TRAINING["cases"] + list(MULTIMODEL["setups"].values()):
        assert (MODELS / job["program"] / "model.py").is_file(), job["program"]
    for c in TRAINING["cases"]:
        assert ("expect" in c) != ("runs" in c), f"{c['id']}: expect or runs, not both"
    for name, setup in MULTIMODEL["setups"].items():  # one server runs one program for all its models
        for model, spec in setup["models"].items():
            assert spec.get("empty") or SERVING["setups"][spec["setup"]]["program"] == setup["program"], (name, model)
    for c in MULTIMODEL["cases"]:
        assert c["setup"] in MULTIMODEL["setups"] and c["steps"], c["id"]
        assert c["env"].get("SAGEMAKER_MULTI_MODEL", "").lower() == "true", c["id"]
    for lang in ("python", "r", "julia"):
        file = GOLDEN / "expected-differences" / f"{lang}.json"
        if file.exists():
            for case_id, reason in json.loads(file.read_text()).items():
                assert case_id in ids, f"{lang}: unknown case {case_id}"
                assert isinstance(reason, str) and reason.strip(), f"{lang}: {case_id} has no reason"
