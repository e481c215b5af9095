"""The Python runtime image, black-box in a real Docker engine: train → model.tar.gz → serve → every status.

Clause IDs from the SageMaker contract. Containers publish on 127.0.0.1 only and are always removed.
"""

from __future__ import annotations

import http.client
import json
import re
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sagemaker_rosetta.containers import Server, image_config, ml_root, pack_model, run, serving, unpack_model
from sagemaker_rosetta.engine import docker

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "iris" / "data"
IMAGE = "rosetta-example/iris-python:latest"
BASE = "rosetta/python:latest"
HP = {"n_estimators": "30", "target": '"species"'}

#: user code mounted over /opt/program for lifecycle tests: slow predict, slow load, checkpoints
TOY = '''
import os, time
import numpy as np

class Toy:
    n_features_in_ = 2

def fit(data, hp):
    if os.environ.get("TOY_SLOW_FIT"):
        print("fitting", flush=True)
        time.sleep(60)
    return Toy()

def load(model_dir):
    time.sleep(float(os.environ.get("TOY_LOAD_SECONDS", "0")))
    if not (model_dir / "toy.txt").is_file():
        raise FileNotFoundError(f"no toy.txt in {model_dir}")
    return Toy()

def save(model, model_dir):
    (model_dir / "toy.txt").write_text("toy")

def predict(model, X):
    if X[0, 0] < 0:
        time.sleep(-X[0, 0])
    return X.sum(axis=1)

def checkpoint(checkpoint_dir):
    (checkpoint_dir / "ckpt.txt").write_text("saved")
'''


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train iris in the container (T-01, T-04, T-05, T-07 with a read-only channel T-08)."""
    base = tmp_path_factory.mktemp("job")
    ml = ml_root(base / "ml", hyperparameters=HP, channels={"train": {"train.csv": (DATA / "train.csv").read_text()}})
    res = run(IMAGE, ["train"], volumes={ml: "/opt/ml", ml / "input/data/train": "/opt/ml/input/data/train:ro"})
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"#metric train_accuracy=([0-9.]+)", res.stdout)  # T-20
    # T-14/S-01: package the model dir's contents like SageMaker, extract to a fresh dir
    return unpack_model(pack_model(ml / "model", base / "model.tar.gz"), base / "extracted")


@pytest.fixture(scope="module")
def server(trained: Path) -> Iterator[Server]:
    with serving(IMAGE, volumes={trained: "/opt/ml/model:ro"}, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}) as s:
        yield s


@pytest.fixture
def toy_code(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    (code / "model.py").write_text(TOY)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "toy.txt").write_text("toy")
    return code


# -- static image (C-01..C-04, M-02) --------------------------------------------------------------

def test_image_static_contract() -> None:
    cfg = image_config(BASE)
    assert cfg["Entrypoint"] == ["rosetta-entrypoint"]  # exec form, not /bin/sh -c (C-02)
    labels = cfg["Labels"] or {}
    assert isinstance(labels, dict)
    assert labels["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"  # M-02
    script = "command -v train; command -v serve; ls -A /opt/ml 2>/dev/null | wc -l"
    res = run(BASE, ["-c", script], extra=["--entrypoint", "sh"])
    lines = res.stdout.split()
    assert lines[:2] == ["/usr/local/bin/train", "/usr/local/bin/serve"] and lines[2] == "0"  # C-04
    bad = run(BASE, ["bogus"])
    assert bad.returncode == 2 and "unknown command 'bogus'" in bad.stderr


def _custom_ca_lines() -> list[str]:
    """A distinctive base64 line of each CA in the host bundle that is not one of Debian's (Mozilla) CAs."""
    import os

    bundle = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
    if not bundle.is_file():
        return []
    mozilla = "".join(p.read_text() for p in Path("/usr/share/ca-certificates/mozilla").glob("*.crt"))
    lines = []
    for pem in re.findall(r"-----BEGIN CERTIFICATE-----\n(.*?)-----END", bundle.read_text(), re.S):
        body = pem.splitlines()
        if len(body) > 4 and body[2] not in mozilla:
            lines.append(body[len(body) // 2])
    return lines


def test_build_ca_not_in_image() -> None:
    needles = _custom_ca_lines()
    assert needles, "expected the host bundle to hold the build CA (this machine intercepts TLS)"
    script = "grep -rlF -e " + " -e ".join(f"'{n}'" for n in needles) + \
        " / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev 2>/dev/null; true"
    res = run(BASE, ["-c", script], extra=["--entrypoint", "sh"])
    assert res.stdout.strip() == "", f"build CA found in image files: {res.stdout}"


# -- serving: accuracy and the status matrix (S-*, B-*) --------------------------------------------

def test_iris_accuracy_and_no_accept_gives_csv(server: Server) -> None:
    features = (DATA / "test_features.csv").read_bytes()
    labels = [line.rsplit(",", 1)[1] for line in (DATA / "test.csv").read_text().splitlines()[1:]]
    r = server.invoke(features, "text/csv", accept=None)  # B-06: batch sends no Accept
    assert r.status == 200 and r.headers["content-type"] == "text/csv"
    predicted = r.text.splitlines()
    assert len(predicted) == len(labels)  # B-08
    accuracy = sum(p == t for p, t in zip(predicted, labels, strict=True)) / len(labels)
    assert accuracy >= 0.9


@pytest.mark.parametrize("n", [1, 2, 1000])
@pytest.mark.parametrize("newline", [True, False])
def test_record_counts(server: Server, n: int, newline: bool) -> None:  # B-08, B-09
    rows = ["5.1,3.5,1.4,0.2", "6.7,3.0,5.2,2.3"] * 500
    body = "\n".join(rows[:n]) + ("\n" if newline else "")
    r = server.invoke(body.encode())
    assert r.status == 200 and len(r.text.splitlines()) == n and r.text.endswith("\n")
    assert r.text.splitlines()[0] == "setosa"


@pytest.mark.parametrize("ctype, accept, body, status, starts", [
    ("text/csv; charset=utf-8", "application/json", b"5.1,3.5,1.4,0.2", 200, '{"predictions":["setosa"]}'),
    ("application/json", "application/jsonlines", b"[[5.1,3.5,1.4,0.2]]", 200, '"setosa"'),
    ("application/jsonlines", "text/html;q=0.9, text/csv", b"[5.1,3.5,1.4,0.2]", 200, "setosa"),
    ("text/plain", None, b"5.1,3.5,1.4,0.2", 415, "unsupported Content-Type 'text/plain'; accepted: text/csv"),
    ("text/csv", "image/png", b"5.1,3.5,1.4,0.2", 406, "cannot produce 'image/png'"),
    ("text/csv", None, b"5.1,3.5,1.4", 400, "row 1 has 3 columns, expected 4"),
    ("text/csv", None, b"5.1,abc,1.4,0.2", 400, "row 1: 'abc' is not a number"),
    ("text/csv", None, b"", 400, "empty payload"),
    ("application/json", None, b"{bad", 400, "malformed JSON"),
])
def test_content_matrix(server: Server, ctype: str, accept: str | None, body: bytes, status: int,
                        starts: str) -> None:  # S-16, S-17
    r = server.invoke(body, ctype, accept)
    assert r.status == status and r.text.startswith(starts), (r.status, r.text)


def test_routes_404_405_and_execution_parameters(server: Server) -> None:  # B-03
    assert server.request("GET", "/nope").status == 404
    r = server.request("GET", "/invocations")
    assert r.status == 405 and r.headers["allow"] == "POST"
    params = json.loads(server.request("GET", "/execution-parameters").body)
    assert params["BatchStrategy"] in {"MULTI_RECORD", "SINGLE_RECORD"}
    assert params["MaxConcurrentTransforms"] * params["MaxPayloadInMB"] <= 100


def test_payload_limit(server: Server) -> None:  # S-12
    row = b"5.1,3.5,1.4,0.2\n"
    near = row * (int(5.9e6) // len(row))
    r = server.invoke(near)
    assert r.status == 200 and r.text.count("\n") == near.count(b"\n")
    r = server.invoke(row * (7 * 1024 * 1024 // len(row)))
    assert r.status == 413 and r.text.startswith("payload too large")


def test_keepalive_latency_two_workers_no_nagle_stall(server: Server) -> None:
    """c=1 keep-alive with 2 workers: a Nagle/delayed-ACK stall would cost ≥ 40 ms per request."""
    conn = http.client.HTTPConnection("127.0.0.1", server.host_port, timeout=10)
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        conn.request("POST", "/invocations", body=b"5.1,3.5,1.4,0.2", headers={"Content-Type": "text/csv"})
        assert conn.getresponse().read() == b"setosa\n"
        times.append(time.perf_counter() - t0)
    conn.close()
    assert statistics.median(times) < 0.02, f"median {statistics.median(times) * 1e3:.1f} ms"


# -- lifecycle: port, read-only model, readiness, SIGTERM, faults ----------------------------------

def test_bind_to_port(trained: Path) -> None:  # S-04
    with serving(IMAGE, port=9123, env={"SAGEMAKER_BIND_TO_PORT": "9123"},
                 volumes={trained: "/opt/ml/model:ro"}) as s:
        assert s.invoke(b"5.1,3.5,1.4,0.2").text == "setosa\n"
        listening = s.exec("cat", "/proc/net/tcp").stdout
        assert ":23A3 " in listening and ":1F90 " not in listening  # 9123 open, 8080 not (M-03)


def test_slow_load_ping_503_then_200(toy_code: Path) -> None:  # S-09, S-07
    with serving(BASE, ready=False, env={"TOY_LOAD_SECONDS": "4"},
                 volumes={toy_code: "/opt/program:ro", toy_code.parent / "model": "/opt/ml/model:ro"}) as s:
        statuses = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 20:
            try:
                r = s.request("GET", "/ping", timeout=2)
            except (OSError, http.client.HTTPException):
                time.sleep(0.05)
                continue
            assert r.seconds < 2
            statuses.append(r.status)
            if r.status == 200:
                break
            time.sleep(0.1)
        assert statuses[0] == 503 and statuses[-1] == 200 and set(statuses) == {200, 503}
        assert s.invoke(b"1,2").text == "3.0\n"


def test_ping_during_long_invocation_and_sigterm_drain(toy_code: Path) -> None:  # S-07, S-13
    with serving(BASE, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"},
                 volumes={toy_code: "/opt/program:ro", toy_code.parent / "model": "/opt/ml/model:ro"}) as s:
        result: dict[str, object] = {}
        slow = threading.Thread(target=lambda: result.update(r=s.invoke(b"-3,0")))
        slow.start()
        time.sleep(0.5)
        ping = s.request("GET", "/ping", timeout=2)
        assert ping.status == 200 and ping.seconds < 2  # one worker, busy predicting, still answers
        t0 = time.monotonic()
        s.kill("TERM")
        slow.join(timeout=30)
        code = s.wait_exit(30)
        assert code == 0 and time.monotonic() - t0 < 30
        r = result["r"]
        assert getattr(r, "status", None) == 200 and getattr(r, "text", None) == "-3.0\n"  # in-flight finished


def test_dead_worker_is_replaced(server: Server) -> None:
    children = _worker_pids(server)
    assert len(children) == 2, children
    assert server.exec("sh", "-c", f"kill -9 {children[0]}").returncode == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        now = _worker_pids(server)
        if len(now) == 2 and children[0] not in now:
            break
        time.sleep(0.2)
    assert len(_worker_pids(server)) == 2 and children[0] not in _worker_pids(server)
    assert all(server.invoke(b"5.1,3.5,1.4,0.2").status == 200 for _ in range(20))


def _worker_pids(server: Server) -> list[int]:
    """Children of PID 1 (the supervisor), read from /proc: the image has no ps."""
    script = "for d in /proc/[0-9]*; do awk '{print $1, $4}' $d/stat 2>/dev/null; done"
    out = server.exec("sh", "-c", script).stdout.split("\n")
    return sorted(int(p) for p, pp in (line.split() for line in out if line.strip()) if pp == "1")


@pytest.mark.parametrize("case", ["missing", "corrupt"])
def test_missing_or_corrupt_model_exits_fast(tmp_path: Path, case: str) -> None:
    model = tmp_path / "model"
    model.mkdir()
    if case == "corrupt":
        (model / "model.pkl").write_bytes(b"not a pickle")
    s = Server(IMAGE, volumes={model: "/opt/ml/model:ro"}).start()
    try:
        code = s.wait_exit(20)
        assert code not in (None, 0)
        assert ("no model.pkl" if case == "missing" else "is corrupt") in s.logs()
    finally:
        s.remove()


def test_docker_stop_is_fast(trained: Path) -> None:  # C-02: PID 1 handles SIGTERM
    s = Server(IMAGE, volumes={trained: "/opt/ml/model:ro"}).start()
    try:
        s.wait_ready(60)
        t0 = time.monotonic()
        subprocess.run([docker(), "stop", "-t", "20", s.name], capture_output=True, check=True)
        assert time.monotonic() - t0 < 5 and s.exit_code() == 0
    finally:
        s.remove()


# -- training failures and stop in the container (T-16, T-17, T-21) ------------------------------

@pytest.mark.parametrize("hp, channels, first", [
    ({"n_estimators": "lots"}, {"train": {"train.csv": "a,b\n1,2\n"}},
     "HyperparameterError: n_estimators: expected an integer, got 'lots'"),
    ({}, {}, "DataError: channel 'train' is configured but"),
    ({"target": '"nope"'}, {"train": {"train.csv": "a,b\n1,2\n"}}, "UserCodeError: fit raised KeyError"),
])
def test_training_failures(tmp_path: Path, hp: dict[str, str], channels: dict[str, dict[str, str]],
                           first: str) -> None:
    ml = ml_root(tmp_path / "ml", hyperparameters=hp, channels=channels)
    if not channels:  # configured in inputdataconfig.json but absent on disk
        (ml / "input/config/inputdataconfig.json").write_text(json.dumps({"train": {"TrainingInputMode": "File"}}))
    res = run(IMAGE, ["train"], volumes={ml: "/opt/ml"})
    assert res.returncode == 1
    failure = (ml / "output" / "failure").read_text().splitlines()
    assert failure[0].startswith(first) and failure[1] == ""
    assert first.split(":")[0] in res.stderr


def test_sigterm_during_training_checkpoints(tmp_path: Path, toy_code: Path) -> None:
    ml = ml_root(tmp_path / "ml", channels={"train": {"x.csv": "a\n1\n"}})
    s = Server(BASE, args=("train",), env={"TOY_SLOW_FIT": "1"},
               volumes={ml: "/opt/ml", toy_code: "/opt/program:ro"})
    try:
        s.start()
        deadline = time.monotonic() + 30
        while "fitting" not in s.logs() and time.monotonic() < deadline:
            time.sleep(0.1)
        t0 = time.monotonic()
        s.kill("TERM")
        assert s.wait_exit(30) == 143 and time.monotonic() - t0 < 10
        assert (ml / "checkpoints" / "ckpt.txt").read_text() == "saved"
        assert (ml / "output" / "failure").read_text().startswith("Stopped: received SIGTERM")
    finally:
        s.remove()


def test_runs_as_non_root(tmp_path: Path) -> None:
    channels = {"train": {"train.csv": (DATA / "train.csv").read_text()}}
    ml = ml_root(tmp_path / "ml", hyperparameters=HP, channels=channels)
    res = run(IMAGE, ["train"], volumes={ml: "/opt/ml"}, extra=["--user", "1000:1000"])
    assert res.returncode == 0, res.stderr
    with serving(IMAGE, volumes={ml / "model": "/opt/ml/model:ro"}, extra=["--user", "1000:1000"]) as s:
        assert s.invoke(b"5.1,3.5,1.4,0.2").text == "setosa\n"
