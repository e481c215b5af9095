"""The Julia runtime image, black-box in a real Docker engine: train → model.tar.gz → serve → every status.

Clause IDs from the SageMaker contract. Containers publish on 127.0.0.1 only and are always removed.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sagemaker_rosetta import images
from sagemaker_rosetta.containers import Server, container_name, image_config, ml_root, run, serving
from sagemaker_rosetta.engine import docker

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "iris" / "data"
IMAGE = "rosetta-example/iris-julia:latest"
BASE = "rosetta/julia:latest"
LIMIT = 6 * 1024 * 1024

#: user code mounted over /opt/program for the failure and SIGTERM tests
TOY = """
struct Toy end
hyperparameters(::Type{Toy}) = (mode = "ok",)
function fit(::Type{Toy}, data, hp)
    hp.mode == "boom" && error("toy exploded")
    if hp.mode == "slow"
        println("fitting"); flush(stdout)
        for _ in 1:1200; sleep(0.1); end
    end
    return Toy()
end
checkpoint(::Type{Toy}, dir) = write(joinpath(dir, "toy.ckpt"), "saved")
predict(::Toy, X) = vec(sum(X; dims = 2))
"""


@pytest.fixture(scope="module")
def built() -> None:
    """Build the runtime and the example image (layer cache: seconds when nothing changed)."""
    images.build(["julia"], say=lambda s: None, with_bases=False)
    images.build_examples(["iris-julia"], say=lambda s: None)


def train_root(base: Path, hps: dict[str, str] | None = None) -> Path:
    return ml_root(base, hyperparameters=hps or {}, channels={"train": {"train.csv": (DATA / "train.csv").read_text()}})


@pytest.fixture(scope="module")
def model_dir(built: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train iris (T-01..T-16), pack model.tar.gz as SageMaker does, extract it to a fresh dir (S-01)."""
    base = train_root(tmp_path_factory.mktemp("ml"), {"epochs": "400", "target": '"species"'})
    res = run(IMAGE, ["train"], volumes={base: "/opt/ml"}, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "#metric train_accuracy=" in res.stdout                      # T-20
    assert not (base / "output" / "failure").exists()
    meta = json.loads((base / "model" / "rosetta.json").read_text())
    assert meta["runtime"] == "julia" and meta["n_features"] == 4
    tarball = base / "model.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for f in (base / "model").iterdir():
            tar.add(f, arcname=f.name)
    fresh = tmp_path_factory.mktemp("model")
    with tarfile.open(tarball) as tar:
        tar.extractall(fresh)
    return fresh


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[Server]:
    with serving(IMAGE, volumes={model_dir: "/opt/ml/model:ro"}, ready_timeout=180) as s:   # S-02 read-only
        yield s


def csv_rows(n: int, final_newline: bool = True) -> bytes:
    body = "\n".join(["5.1,3.5,1.4,0.2"] * n)
    return (body + ("\n" if final_newline else "")).encode()


def test_image_config(built: None) -> None:
    cfg = image_config(BASE)
    assert cfg["Entrypoint"] == ["rosetta-entrypoint"]                  # C-01, exec form
    labels = cfg.get("Labels") or {}
    assert isinstance(labels, dict)
    assert labels.get("com.amazonaws.sagemaker.capabilities.accept-bind-to-port") == "true"   # M-02
    res = run(BASE, ["bogus"])
    assert res.returncode == 2 and "expected 'train' or 'serve'" in res.stderr


def test_accuracy_on_holdout(server: Server) -> None:
    lines = (DATA / "test.csv").read_text().splitlines()
    header, rows = lines[0].split(","), [line.split(",") for line in lines[1:]]
    target = header.index("species")
    X = "\n".join(",".join(v for i, v in enumerate(r) if i != target) for r in rows)
    resp = server.invoke(X.encode(), "text/csv")                        # no Accept → CSV (B-06)
    assert resp.status == 200 and resp.headers["content-type"] == "text/csv", resp.text
    preds = resp.text.splitlines()
    assert len(preds) == len(rows)
    accuracy = sum(p == r[target] for p, r in zip(preds, rows, strict=True)) / len(rows)
    assert accuracy >= 0.9


@pytest.mark.parametrize("n", [1, 2, 1000])
@pytest.mark.parametrize("final_newline", [True, False])
def test_one_record_per_row(server: Server, n: int, final_newline: bool) -> None:
    resp = server.invoke(csv_rows(n, final_newline), "text/csv")       # B-08, B-09: no header row
    assert resp.status == 200, resp.text
    assert resp.text.endswith("\n") and resp.text.splitlines() == ["setosa"] * n


def test_single_headerless_row_is_not_eaten(server: Server) -> None:
    body = (DATA / "test_features.csv").read_text().splitlines()[0].encode()
    resp = server.invoke(body, "text/csv", "text/csv")
    assert resp.status == 200 and len(resp.text.splitlines()) == 1


def test_json_and_jsonlines(server: Server) -> None:
    r = server.invoke(b"[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]", "application/json")
    assert r.status == 200 and r.headers["content-type"] == "application/json"
    assert json.loads(r.body) == {"predictions": ["setosa", "virginica"]}
    r = server.invoke(b'{"instances": [[5.1,3.5,1.4,0.2]]}', "application/json", "application/jsonlines")
    assert (r.status, r.text) == (200, '"setosa"\n')
    r = server.invoke(b"[5.1,3.5,1.4,0.2]\n[6.7,3.0,5.2,2.3]\n", "application/x-jsonlines", "text/csv")
    assert (r.status, r.text) == (200, "setosa\nvirginica\n")


@pytest.mark.parametrize(("body", "ctype", "accept", "status", "message"), [
    (b"5.1,3.5,1.4,0.2", "image/png", None, 415,
     "unsupported Content-Type 'image/png'; accepted: text/csv, application/json, application/jsonlines"),
    (b"5.1,3.5,1.4,0.2", "text/csv", "image/png", 406,
     "cannot produce 'image/png'; available: text/csv, application/json, application/jsonlines"),
    (b"", "text/csv", None, 400, "empty payload"),
    (b"5.1,3.5,1.4,0.2\n1,2,abc,4", "text/csv", None, 400, "row 2: 'abc' is not a number"),
    (b"5.1,3.5,1.4", "text/csv", None, 400, "row 1 has 3 columns, expected 4"),
    (b"5.1,3.5,1.4,nan", "text/csv", None, 400, "row 1: non-finite value"),
    (b"\xff\xfe", "text/csv", None, 400, "invalid UTF-8"),
    (b"[[5.1,3.5,1.4,0.2]", "application/json", None, 400, None),
])
def test_error_statuses(server: Server, body: bytes, ctype: str, accept: str | None, status: int,
                        message: str | None) -> None:
    r = server.invoke(body, ctype, accept)
    assert r.status == status, r.text
    assert r.headers["content-type"].startswith("text/plain") and r.text.endswith("\n")   # S-17
    if message:
        assert r.text == message + "\n"


def test_payload_limit(server: Server) -> None:
    ok = csv_rows(int(5.9 * 1024 * 1024) // 16)                          # S-12: 5.9 MB is fine
    r = server.invoke(ok, "text/csv", timeout=120)
    assert r.status == 200 and len(r.text.splitlines()) == len(ok.splitlines())
    big = b"1" * (LIMIT + 1)
    r = server.invoke(big, "text/csv")
    assert r.status == 413 and r.text == f"payload too large: {LIMIT + 1} bytes > limit {LIMIT} bytes\n"


def test_routes(server: Server) -> None:
    assert server.request("GET", "/ping").status == 200                  # S-07
    assert server.request("HEAD", "/ping").status == 200
    r = server.request("GET", "/nowhere")
    assert (r.status, r.text) == (404, "not found\n")
    r = server.request("GET", "/invocations")
    assert (r.status, r.text, r.headers["allow"]) == (405, "method not allowed\n", "POST")
    r = server.request("GET", "/execution-parameters")                   # B-03
    params = json.loads(r.body)
    assert r.status == 200 and params["BatchStrategy"] == "MULTI_RECORD" and params["MaxPayloadInMB"] == 2
    assert params["MaxConcurrentTransforms"] >= 1


def test_bind_to_port_and_stop(model_dir: Path) -> None:
    """SAGEMAKER_BIND_TO_PORT (S-04) is honoured; `docker stop` drains and exits 0 quickly (S-13)."""
    with serving(IMAGE, env={"SAGEMAKER_BIND_TO_PORT": "9123"}, port=9123,
                 volumes={model_dir: "/opt/ml/model:ro"}, ready_timeout=180) as s:
        assert s.invoke(csv_rows(1), "text/csv").text == "setosa\n"
        t0 = time.monotonic()
        s.kill("TERM")
        code = s.wait_exit(30)
        assert code == 0, s.logs()[-2000:]
        assert time.monotonic() - t0 < 10


def test_missing_model_exits(built: None, tmp_path: Path) -> None:
    s = Server(IMAGE, volumes={tmp_path: "/opt/ml/model:ro"}).start()
    try:
        assert s.wait_exit(120) not in (0, None), s.logs()[-2000:]
    finally:
        s.remove()


def test_corrupt_model_exits_fast(built: None, tmp_path: Path) -> None:
    """A garbage model.jls fails before the user's code is compiled, with the reason in the log."""
    (tmp_path / "model.jls").write_bytes(b"\x00garbage, not a model\xff" * 10)
    s = Server(IMAGE, volumes={tmp_path: "/opt/ml/model:ro"})
    t0 = time.monotonic()
    s.start()
    try:
        code = s.wait_exit(60)
        took = time.monotonic() - t0
        logs = s.logs()
        assert code not in (0, None), logs[-2000:]
        assert "corrupt model file /opt/ml/model/model.jls: not a Julia Serialization stream" in logs
        assert "Stacktrace" not in logs                                 # a reason, not a backtrace
        assert took < 15, took                                          # ~1.5 s on a quiet machine
    finally:
        s.remove()


REQUEST = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/csv\r\n"
           b"Content-Length: 16\r\n\r\n5.1,3.5,1.4,0.2\n")


def answer_status(sock: socket.socket) -> int:
    """Read until the server closes; the response's status code (0 = no answer)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:
        pass
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.") else 0


def load_until(port: int, stop: threading.Event, results: list[tuple[float, int]]) -> None:
    """POST with `Connection: close` until `stop`; record (start time, status; 0 = no answer)."""
    while not stop.is_set():
        t, status = time.monotonic(), 0
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
                sock.sendall(REQUEST)
                status = answer_status(sock)
        except OSError:
            pass
        results.append((t, status))


def test_sigterm_under_load_answers_accepted_requests(model_dir: Path) -> None:
    """S-13: SIGTERM while 8 clients open a connection per request: every request sent before
    it is answered 200; connections accepted before it whose request comes 0.3 s AFTER it are
    answered too; new connections are refused afterwards; exit 0 within 30 s."""
    with serving(IMAGE, volumes={model_dir: "/opt/ml/model:ro"}, ready_timeout=180) as s:
        stop, results = threading.Event(), []  # type: ignore[var-annotated]
        threads = [threading.Thread(target=load_until, args=(s.host_port, stop, results)) for _ in range(8)]
        for t in threads:
            t.start()
        silent = [socket.create_connection(("127.0.0.1", s.host_port), timeout=20) for _ in range(4)]
        time.sleep(1.5)
        t0 = time.monotonic()
        s.kill("TERM")
        time.sleep(0.3)
        late = []
        for sock in silent:
            sock.sendall(REQUEST)
            late.append(answer_status(sock))
            sock.close()
        exit_code = s.wait_exit(35)
        took = time.monotonic() - t0
        stop.set()
        for t in threads:
            t.join(30)
        before = [st for t, st in results if t < t0]
        after = [st for t, st in results if t >= t0]
        logs = s.logs()[-2000:]
        assert exit_code == 0 and took < 30, (exit_code, took, logs)
        assert late == [200] * 4, logs
        assert len(before) > 20
        assert [st for st in before if st != 200] == [], logs
        assert 0 in after                                    # refused once the listener closed


def test_non_root_user_trains_and_serves(built: None, tmp_path: Path) -> None:
    """`docker run --user 1000:1000`: training writes the model, serving loads it; the package
    cache precompiled into the image is used as is (nothing compiled into the writable depot)."""
    base = train_root(tmp_path)
    subprocess.run(["chmod", "-R", "a+rwX", str(base)], check=True)
    user = ["--user", "1000:1000"]
    res = run(IMAGE, ["train"], volumes={base: "/opt/ml"}, extra=user, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (base / "model" / "model.jls").stat().st_uid == 1000
    with serving(IMAGE, volumes={base / "model": "/opt/ml/model:ro"}, extra=user, ready_timeout=180) as s:
        assert s.invoke(csv_rows(1), "text/csv").text == "setosa\n"
        assert s.exec("id", "-u").stdout.strip() == "1000"
        depot = s.exec("sh", "-c", "ls /tmp/rosetta-julia-depot/compiled 2>&1 || true").stdout
        assert "No such file" in depot, depot                # Rosetta loaded from /opt/rosetta/depot


def failure_of(base: Path) -> str:
    return (base / "output" / "failure").read_text()


def test_failure_bad_hyperparameter(built: None, tmp_path: Path) -> None:
    base = train_root(tmp_path, {"epochs": "abc"})
    res = run(IMAGE, ["train"], volumes={base: "/opt/ml"}, timeout=300)
    assert res.returncode == 1
    first = failure_of(base).splitlines()[0]                            # T-17: reason first
    assert first == "HyperparameterError: epochs: expected an integer, got 'abc'"
    assert first in res.stderr


def test_failure_missing_channel(built: None, tmp_path: Path) -> None:
    base = train_root(tmp_path)
    shutil.rmtree(base / "input" / "data" / "train")
    res = run(IMAGE, ["train"], volumes={base: "/opt/ml"}, timeout=300)
    assert res.returncode == 1
    assert failure_of(base).startswith("DataError: channel 'train' is listed in inputdataconfig.json")


def test_failure_user_error(built: None, tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "model.jl").write_text(TOY)
    base = train_root(tmp_path / "ml", {"mode": "boom"})
    res = run(BASE, ["train"], volumes={base: "/opt/ml", code: "/opt/program:ro"}, timeout=300)
    assert res.returncode == 1
    text = failure_of(base)
    assert text.startswith("UserCodeError: ErrorException: toy exploded\n\n")
    assert "fit" in text                                                # the backtrace follows


def test_sigterm_during_training(built: None, tmp_path: Path) -> None:
    """T-21: checkpoint hook called, failure file `Stopped`, exit 143, well within 120 s."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "model.jl").write_text(TOY)
    base = train_root(tmp_path / "ml", {"mode": "slow"})
    name = container_name("train-sigterm")
    cmd = [docker(), "run", "-d", "--name", name, "-v", f"{base}:/opt/ml", "-v", f"{code}:/opt/program:ro",
           BASE, "train"]
    subprocess.run(cmd, check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            logs = subprocess.run([docker(), "logs", name], capture_output=True, text=True).stdout
            if "fitting" in logs:
                break
            time.sleep(0.2)
        t0 = time.monotonic()
        subprocess.run([docker(), "kill", "-s", "TERM", name], check=True, capture_output=True)
        out = subprocess.run([docker(), "wait", name], capture_output=True, text=True, timeout=60).stdout
        assert int(out.strip()) == 143
        assert time.monotonic() - t0 < 30
        assert failure_of(base).startswith("Stopped: received SIGTERM")
        assert (base / "checkpoints" / "toy.ckpt").read_text() == "saved"   # T-13
    finally:
        subprocess.run([docker(), "rm", "-f", name], capture_output=True)


def test_early_sigterm_is_never_lost(built: None, tmp_path: Path) -> None:
    """T-21 regression: julia 1.5 dropped a SIGINT landing while it compiled (2-2.5 s into a job here,
    which then ran until the 100 s watchdog). The entrypoint repeats it until the runtime acknowledges:
    a TERM at any moment of the start stops the job with exit 143 and the failure file."""
    delays = [0.5, 1.5, 2.0, 2.5, 3.0]
    outcomes: dict[float, tuple[int, float, str]] = {}

    def one(delay: float) -> None:
        base = train_root(tmp_path / f"ml-{delay}", {"epochs": "1000000000", "target": "species"})
        name = container_name(f"train-early-term-{delay}".replace(".", "-"))
        subprocess.run([docker(), "run", "-d", "--name", name, "-v", f"{base}:/opt/ml", IMAGE, "train"],
                       check=True, capture_output=True)
        try:
            time.sleep(delay)
            t0 = time.monotonic()
            subprocess.run([docker(), "kill", "-s", "TERM", name], check=True, capture_output=True)
            out = subprocess.run([docker(), "wait", name], capture_output=True, text=True, timeout=60).stdout
            outcomes[delay] = (int(out.strip()), time.monotonic() - t0, failure_of(base))
        finally:
            subprocess.run([docker(), "rm", "-f", name], capture_output=True)

    threads = [threading.Thread(target=one, args=(d,)) for d in delays]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert sorted(outcomes) == delays, outcomes
    for delay, (code, took, failure) in outcomes.items():
        assert code == 143 and took < 30, (delay, code, took)
        assert failure.startswith("Stopped: received SIGTERM"), (delay, failure)
