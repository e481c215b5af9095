"""The R runtime images, black-box in a real Docker engine: train → model.tar.gz → serve.

Both flavours (plumber: ``rosetta-example/iris-r:latest``; rpy2: ``…:rpy2``) run the same
HTTP tests. Runtime images must be built first (``rosetta build r r-rpy2``); the example
images are built here from ``examples/iris/r``. Containers publish on 127.0.0.1 only.
"""

from __future__ import annotations

import csv
import http.client
import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sagemaker_rosetta import images
from sagemaker_rosetta.containers import Server, image_config, ml_root, pack_model, run, serving, unpack_model
from sagemaker_rosetta.engine import docker

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "iris" / "data"
EXAMPLE = ROOT / "examples" / "iris" / "r"
FLAVOURS = {"plumber": ("rosetta/r:latest", "rosetta-example/iris-r:latest", "Dockerfile"),
            "rpy2": ("rosetta/r:rpy2", "rosetta-example/iris-r:rpy2", "Dockerfile.rpy2")}
PLUMBER = FLAVOURS["plumber"][1]
HP = {"ntree": "50", "target": '"species"', "seed": "7"}
ROW = b"5.9,3.0,5.1,1.8"
LIMIT = 6 * 1024 * 1024
TRAIN = {"train": {"train.csv": (DATA / "train.csv").read_text()}}
ACCEPTED = "text/csv, application/json, application/jsonlines"

#: user code mounted over /opt/program for the lifecycle tests
TOY = r'''
hyperparameters <- list(slow = FALSE)
fit <- function(data, hyperparameters) {
  if (hyperparameters$slow) { cat("fitting\n"); for (i in 1:600) Sys.sleep(0.1) }
  stop("toy fit failed on purpose")
}
checkpoint <- function(checkpoint_dir) writeLines("saved", file.path(checkpoint_dir, "ckpt.txt"))
'''

#: a serving model whose prediction sleeps -X[1, 1] seconds (S-09, S-13 tests)
SLOW = r'''
load_model <- function(model_dir) structure(list(), class = "toy")
n_features.toy <- function(model) 2L
predict.toy <- function(object, newdata, ...) {
  if (newdata[1, 1] < 0) Sys.sleep(-newdata[1, 1])
  rowSums(newdata)
}
'''


@pytest.fixture(scope="module")
def example_images() -> None:
    """Build both example images (``FROM rosetta/r:…`` + model.R)."""
    for base, tag, dockerfile in FLAVOURS.values():
        probe = subprocess.run([docker(), "image", "inspect", base], capture_output=True, check=False)
        assert probe.returncode == 0, f"{base} is missing: run `rosetta build r r-rpy2` first"
        images.docker_build(tag, EXAMPLE / dockerfile, EXAMPLE)


@pytest.fixture(scope="module")
def model_dir(example_images: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train iris (read-only channel, T-08), tar the model dir like SageMaker, extract fresh."""
    base = tmp_path_factory.mktemp("job")
    ml = ml_root(base / "ml", hyperparameters=HP, channels={"train": {"train.csv": (DATA / "train.csv").read_text()}})
    res = run(PLUMBER, ["train"], volumes={ml: "/opt/ml", ml / "input/data/train": "/opt/ml/input/data/train:ro"})
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"#metric train:oob_error=([0-9.]+)", res.stdout)  # T-20
    meta = json.loads((ml / "model" / "rosetta.json").read_text())
    assert meta["runtime"] == "r" and meta["n_features"] == 4
    return unpack_model(pack_model(ml / "model", base / "model.tar.gz"), base / "extracted")


@pytest.fixture(scope="module", params=list(FLAVOURS))
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def server(flavour: str, model_dir: Path) -> Iterator[Server]:
    """One serving container per flavour, model mounted read-only (S-02)."""
    with serving(FLAVOURS[flavour][1], volumes={model_dir: "/opt/ml/model:ro"},
                 env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}, ready_timeout=60) as srv:
        yield srv


# -- image -------------------------------------------------------------------------------------

@pytest.mark.parametrize("image", ["rosetta/r:latest", "rosetta/r:rpy2"])
def test_image_config(image: str) -> None:
    cfg = image_config(image)
    assert cfg["Entrypoint"] == ["rosetta-entrypoint"]  # C-02 exec form, no tini (C-03)
    labels = cfg.get("Labels") or {}
    assert isinstance(labels, dict)
    assert labels.get("com.amazonaws.sagemaker.capabilities.accept-bind-to-port") == "true"  # M-02


def test_unknown_command_exits_2() -> None:
    res = run("rosetta/r:latest", ["bogus"])
    assert res.returncode == 2 and "expected 'train' or 'serve'" in res.stderr


# -- serving, both flavours ---------------------------------------------------------------------

def test_accuracy_on_test_set(server: Server) -> None:
    with (DATA / "test.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    body = "".join(f"{r['sepal_length']},{r['sepal_width']},{r['petal_length']},{r['petal_width']}\n" for r in rows)
    res = server.invoke(body.encode(), "text/csv")  # no Accept → the request type (B-06)
    assert res.status == 200 and res.headers["content-type"] == "text/csv", res.text
    preds = res.text.splitlines()
    assert len(preds) == len(rows)
    accuracy = sum(p == r["species"] for p, r in zip(preds, rows, strict=True)) / len(rows)
    assert accuracy >= 0.9


def test_ping_and_head(server: Server) -> None:
    assert server.request("GET", "/ping").status == 200
    assert server.request("HEAD", "/ping").status == 200


@pytest.mark.parametrize("n", [1, 2, 1000])
@pytest.mark.parametrize("final_newline", [True, False])
def test_record_counts(server: Server, n: int, final_newline: bool) -> None:
    body = b"\n".join([ROW] * n) + (b"\n" if final_newline else b"")
    res = server.invoke(body, "text/csv", "text/csv")
    assert res.status == 200, res.text
    assert res.body.count(b"\n") == n and res.body.endswith(b"\n")  # B-08: one line per record


def test_single_headerless_row_is_not_eaten(server: Server) -> None:
    res = server.invoke(b"5.1,3.5,1.4,0.2", "text/csv")
    assert res.status == 200 and res.text == "setosa\n"


@pytest.mark.parametrize(("ctype", "body"), [
    ("application/json", b"[[5.1,3.5,1.4,0.2],[6.9,3.1,5.4,2.1]]"),
    ("application/json", b'{"instances": [[5.1,3.5,1.4,0.2],[6.9,3.1,5.4,2.1]]}'),
    ("application/jsonlines", b"[5.1,3.5,1.4,0.2]\n[6.9,3.1,5.4,2.1]\n"),
    ("text/csv; charset=utf-8", b"5.1,3.5,1.4,0.2\r\n6.9,3.1,5.4,2.1\r\n"),
])
@pytest.mark.parametrize("accept", ["application/json", "application/jsonlines", "text/csv", "*/*"])
def test_codecs(server: Server, ctype: str, body: bytes, accept: str) -> None:
    res = server.invoke(body, ctype, accept)
    assert res.status == 200, res.text
    want = ctype.split(";")[0] if accept == "*/*" else accept
    assert res.headers["content-type"] == want
    if want == "application/json":
        assert json.loads(res.body) == {"predictions": ["setosa", "virginica"]}
    elif want == "application/jsonlines":
        assert [json.loads(line) for line in res.text.splitlines()] == ["setosa", "virginica"]
    else:
        assert res.text == "setosa\nvirginica\n"


@pytest.mark.parametrize(("ctype", "body", "message"), [
    ("text/csv", b"1,2,3,4\n1,2,abc,4\n", "row 2: 'abc' is not a number"),
    ("text/csv", b"1,2,3\n", "row 1 has 3 columns, expected 4"),
    ("text/csv", b"1,2,3,4\n1,2,3\n", "row 2 has 3 columns, expected 4"),
    ("text/csv", b"", "empty payload"),
    ("text/csv", b"nan,1,2,3\n", "row 1: non-finite value"),
    ("text/csv", b"\xff\xfe,1,2,3", "invalid UTF-8"),
    ("application/json", b"[[1,2,3,4]", "malformed JSON"),
    ("application/json", b"[" * 40 + b"]" * 40, "nested too deeply"),
])
def test_bad_requests_are_400(server: Server, flavour: str, ctype: str, body: bytes, message: str) -> None:
    res = server.invoke(body, ctype, "text/csv")
    assert res.status == 400, res.text
    assert message in res.text and res.text.endswith("\n") and res.text.count("\n") == 1


def test_415_406_404_405(server: Server) -> None:
    res = server.invoke(b"x", "text/plain")
    assert (res.status, res.text) == (415, f"unsupported Content-Type 'text/plain'; accepted: {ACCEPTED}\n")
    res = server.invoke(ROW, "text/csv", "image/png")
    assert (res.status, res.text) == (406, f"cannot produce 'image/png'; available: {ACCEPTED}\n")
    res = server.request("GET", "/nope")
    assert (res.status, res.text) == (404, "not found\n")
    res = server.request("DELETE", "/invocations")
    assert res.status == 405 and res.text == "method not allowed\n" and "POST" in res.headers["allow"]
    res = server.request("POST", "/ping")
    assert res.status == 405 and "GET" in res.headers["allow"]


def test_payload_limit(server: Server) -> None:
    row = ROW + b"\n"
    ok = row * (int(5.9 * 1024 * 1024) // len(row))  # S-12: 5.9 MB must not be 413
    res = server.invoke(ok, "text/csv", "text/csv", timeout=60)
    assert res.status == 200, res.text[:200]
    assert res.body.count(b"\n") == ok.count(b"\n")
    big = row * (LIMIT // len(row) + 1)
    res = server.invoke(big, "text/csv")
    assert res.status == 413
    assert res.text == f"payload too large: {len(big)} bytes > limit {LIMIT} bytes\n"


def test_execution_parameters(server: Server) -> None:
    res = server.request("GET", "/execution-parameters")
    assert res.status == 200 and res.headers["content-type"].startswith("application/json")
    assert json.loads(res.body) == {"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 2}


def test_unknown_headers_ignored(server: Server) -> None:
    res = server.request("POST", "/invocations", ROW, {"Content-Type": "text/csv", "X-Foo": "bar",
                                                       "X-Amzn-SageMaker-Custom-Attributes": "a=b"})
    assert res.status == 200  # S-10


def test_only_the_bind_port_listens(server: Server) -> None:
    """M-03: workers sit on unix sockets (plumber) or share the one socket (rpy2)."""
    script = "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '$4 == \"0A\" {print $2}'"
    ports = {int(addr.rsplit(":", 1)[1], 16) for addr in server.exec("sh", "-c", script).stdout.split()}
    assert ports == {8080}


def _worker_pids(srv: Server, flavour: str) -> list[int]:
    # the [x] keeps this shell's own command line from matching
    pattern = "rosetta::serve_worke[r]" if flavour == "plumber" else "rosetta_runtime.entrypoin[t]"
    script = (f"for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q '{pattern}' "
              "&& echo ${p#/proc/}; done")
    out = srv.exec("sh", "-c", script).stdout.split()
    return sorted(int(p) for p in out if p.isdigit() and int(p) != 1)


def test_killed_worker_is_replaced(server: Server, flavour: str) -> None:
    """kill -9 one worker under bounded load: the service recovers (a new worker appears)."""
    before = _worker_pids(server, flavour)
    assert len(before) >= 2, before
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.host_port, timeout=10)
        while not stop.is_set() and len(statuses) < 5000:
            try:
                conn.request("POST", "/invocations", ROW, {"Content-Type": "text/csv"})
                resp = conn.getresponse()
                resp.read()
                statuses.append(resp.status)
            except (OSError, http.client.HTTPException):
                statuses.append(0)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", server.host_port, timeout=10)
        conn.close()

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    killed = server.exec("sh", "-c", f"kill -9 {before[0]}")  # the shell builtin: no procps in the image
    assert killed.returncode == 0, killed.stderr
    deadline = time.monotonic() + 20
    after: list[int] = []
    while time.monotonic() < deadline:
        after = _worker_pids(server, flavour)
        if len(after) >= len(before) and before[0] not in after:
            break
        time.sleep(0.2)
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(15)
    assert before[0] not in after and len(after) >= len(before), (before, after, server.logs()[-2000:])
    assert statuses.count(200) > 10
    # after the restart every request succeeds again
    for _ in range(20):
        assert server.invoke(ROW, "text/csv").status == 200


# -- lifecycle containers ------------------------------------------------------------------------

def test_bind_port_and_fast_stop(flavour: str, model_dir: Path) -> None:
    """SAGEMAKER_BIND_TO_PORT honoured (S-04); `docker stop` exits 0 well within 5 s (S-13)."""
    srv = Server(FLAVOURS[flavour][1], port=9091, volumes={model_dir: "/opt/ml/model:ro"},
                 env={"SAGEMAKER_BIND_TO_PORT": "9091", "SAGEMAKER_MODEL_SERVER_WORKERS": "1"})
    try:
        srv.start()
        srv.wait_ready(60)
        assert srv.invoke(ROW, "text/csv").text == "virginica\n"
        t0 = time.monotonic()
        subprocess.run([docker(), "stop", "-t", "10", srv.name], capture_output=True, check=False)
        took = time.monotonic() - t0
        assert srv.exit_code() == 0 and took < 5, (took, srv.logs()[-2000:])
    finally:
        srv.remove()


def test_serves_as_non_root_user(model_dir: Path) -> None:
    with serving(PLUMBER, volumes={model_dir: "/opt/ml/model:ro"}, extra=["--user", "1000"],
                 env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}, ready_timeout=60) as srv:
        assert srv.invoke(b"5.1,3.5,1.4,0.2", "text/csv").text == "setosa\n"


def test_ping_during_slow_request_and_sigterm_drains(flavour: str, tmp_path: Path, example_images: None) -> None:
    """S-09: /ping answers within 2 s while a prediction runs; S-13: SIGTERM lets it finish."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "model.R").write_text(SLOW)
    (tmp_path / "model").mkdir()
    with serving(FLAVOURS[flavour][1], volumes={code: "/opt/program:ro", tmp_path / "model": "/opt/ml/model:ro"},
                 env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}, ready_timeout=60) as srv:
        assert float(srv.invoke(b"1,2\n", "text/csv").text) == 3  # number formats differ (README)
        results: list[int] = []
        slow = threading.Thread(target=lambda: results.append(srv.invoke(b"-3,1\n", "text/csv").status))
        slow.start()
        time.sleep(0.5)
        ping = srv.request("GET", "/ping", timeout=5)
        assert ping.status == 200 and ping.seconds < 2
        t0 = time.monotonic()
        srv.kill("TERM")  # while the slow request is in flight
        slow.join(30)
        assert results == [200]  # drained, not cut off
        assert srv.wait_exit(30) == 0 and time.monotonic() - t0 < 30


HOOKS = r'''
load_model <- function(model_dir) structure(list(), class = "hooked")
n_features.hooked <- function(model) 2L
predict.hooked <- function(object, newdata, ...) rowSums(newdata)
input_fn <- function(body, content_type) {
  text <- rawToChar(body)
  if (!grepl(" ", text, fixed = TRUE)) return(NULL)
  matrix(as.numeric(strsplit(text, " ")[[1]]), nrow = 1)
}
output_fn <- function(predictions, accept) {
  if (accept != "text/csv") return(NULL)
  list(paste0("sum=", predictions, "\n", collapse = ""), "text/x-sum")
}
'''


def test_user_input_fn_output_fn(flavour: str, tmp_path: Path, example_images: None) -> None:
    """input_fn/output_fn in model.R take over after the 415/406 checks; NULL falls back to the codecs."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "model.R").write_text(HOOKS)
    (tmp_path / "model").mkdir()
    with serving(FLAVOURS[flavour][1], volumes={code: "/opt/program:ro", tmp_path / "model": "/opt/ml/model:ro"},
                 env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}, ready_timeout=60) as srv:
        res = srv.invoke(b"1,2\n3,4\n", "text/csv", "text/csv")
        assert (res.status, res.headers["content-type"], res.text) == (200, "text/x-sum", "sum=3\nsum=7\n")
        res = srv.invoke(b"1,2\n", "text/csv", "application/json")
        assert res.status == 200 and json.loads(res.body) == {"predictions": [3]}
        res = srv.invoke(b"5 6", "text/csv", "text/csv")  # input_fn's own format
        assert (res.status, res.text) == (200, "sum=11\n")
        assert srv.invoke(b"5 6", "text/plain").status == 415  # checked before input_fn


def test_missing_model_exits_nonzero(flavour: str, tmp_path: Path, example_images: None) -> None:
    srv = Server(FLAVOURS[flavour][1], volumes={tmp_path: "/opt/ml/model:ro"})
    try:
        srv.start()
        code = srv.wait_exit(30)
        assert code not in (None, 0), srv.logs()[-2000:]
    finally:
        srv.remove()


def test_rpy2_image_trains_with_the_r_entry(tmp_path: Path, example_images: None) -> None:
    ml = ml_root(tmp_path / "ml", hyperparameters=HP, channels=TRAIN)
    res = run(FLAVOURS["rpy2"][1], ["train"], volumes={ml: "/opt/ml"})
    assert res.returncode == 0, res.stderr
    assert (ml / "model" / "model.rds").is_file()


def test_sigterm_while_r_cannot_be_interrupted(tmp_path: Path, example_images: None) -> None:
    """R busy outside the interpreter (here a blocking system()) never sees SIGINT: the
    forwarder's grace period then writes the failure file and exits 143 (T-17, T-21)."""
    ml = ml_root(tmp_path / "ml", channels={"train": {"a.csv": "x\n1\n"}})
    code = tmp_path / "code"
    code.mkdir()
    (code / "model.R").write_text('fit <- function(data, hyperparameters) { cat("fitting\\n"); system("sleep 60") }\n')
    job = Server(PLUMBER)
    try:
        subprocess.run([docker(), "run", "-d", "--name", job.name, "--label", "io.rosetta.managed=1",
                        "-e", "ROSETTA_STOP_GRACE=2", "-v", f"{ml}:/opt/ml", "-v", f"{code}:/opt/program:ro",
                        PLUMBER, "train"], capture_output=True, check=True)
        deadline = time.monotonic() + 30
        while "fitting" not in job.logs() and time.monotonic() < deadline:
            time.sleep(0.1)
        t0 = time.monotonic()
        job.kill("TERM")
        assert job.wait_exit(20) == 143 and time.monotonic() - t0 < 10, job.logs()
        lines = _failure(ml)
        assert lines[0] == "Stopped: received SIGTERM" and lines[1] == "" and "compiled code" in lines[2]
    finally:
        job.remove()


def _failure(ml: Path) -> list[str]:
    return (ml / "output" / "failure").read_text().splitlines()


@pytest.mark.parametrize(("case", "first_line"), [
    ("bad_hp", "HyperparameterError: ntree: expected an integer, got 'abc'"),
    ("missing_channel", "DataError: channel 'train' is missing: /opt/ml/input/data/train"),
    ("unknown_hp", "HyperparameterError: depth: unknown hyperparameter"),
])
def test_training_failures_reason_first(case: str, first_line: str, tmp_path: Path, example_images: None) -> None:
    hp = {"ntree": "abc"} if case == "bad_hp" else {"depth": "3"} if case == "unknown_hp" else {}
    ml = ml_root(tmp_path / "ml", hyperparameters=hp, channels=TRAIN)
    if case == "missing_channel":
        for f in (ml / "input/data/train").iterdir():
            f.unlink()
        (ml / "input/data/train").rmdir()
    res = run(PLUMBER, ["train"], volumes={ml: "/opt/ml"})
    assert res.returncode == 1, res.stderr
    lines = _failure(ml)
    assert lines[0].startswith(first_line) and lines[1] == ""  # T-17
    assert lines[0] in res.stderr


def test_user_error_failure_file(tmp_path: Path, example_images: None) -> None:
    ml = ml_root(tmp_path / "ml", channels={"train": {"a.csv": "x\n1\n"}})
    code = tmp_path / "code"
    code.mkdir()
    (code / "model.R").write_text(TOY)
    res = run(PLUMBER, ["train"], volumes={ml: "/opt/ml", code: "/opt/program:ro"})
    assert res.returncode == 1
    assert _failure(ml)[0] == "UserCodeError: simpleError: toy fit failed on purpose"


def test_sigterm_during_training_checkpoints(tmp_path: Path, example_images: None) -> None:
    """T-21: SIGTERM reaches user code (checkpoint), failure says Stopped, exit 143 quickly."""
    ml = ml_root(tmp_path / "ml", hyperparameters={"slow": "true"}, channels={"train": {"a.csv": "x\n1\n"}})
    code = tmp_path / "code"
    code.mkdir()
    (code / "model.R").write_text(TOY)
    job = Server(PLUMBER, args=("train",), volumes={ml: "/opt/ml", code: "/opt/program:ro"})
    try:
        subprocess.run([docker(), "run", "-d", "--name", job.name, "--label", "io.rosetta.managed=1",
                        "-v", f"{ml}:/opt/ml", "-v", f"{code}:/opt/program:ro", PLUMBER, "train"],
                       capture_output=True, check=True)
        deadline = time.monotonic() + 30
        while "fitting" not in job.logs() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "fitting" in job.logs()
        t0 = time.monotonic()
        job.kill("TERM")
        code_ = job.wait_exit(30)
        assert code_ == 143 and time.monotonic() - t0 < 10, job.logs()
        assert (ml / "checkpoints" / "ckpt.txt").read_text().strip() == "saved"
        assert _failure(ml)[0] == "Stopped: received SIGTERM"
    finally:
        job.remove()
