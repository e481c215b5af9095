"""What only one runtime has: R's two flavours sharing a model and R busy in compiled code; Julia's
start-up SIGTERM race and its listener draining under connection churn. The rest is in the common suite."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

from rosetta_testkit.jobs import eventually, failure_lines, iris_job, toy_job
from rosetta_testkit.runtimes import BY_KEY, Runtime
from rosetta_testkit.session import Models
from sagemaker_rosetta.containers import Container, container_name, serving

pytestmark = pytest.mark.docker

PLUMBER, RPY2, JULIA = BY_KEY["r-plumber"], BY_KEY["r-rpy2"], BY_KEY["julia"]


# -- R --------------------------------------------------------------------------------------------

def test_r_flavours_serve_each_others_models(models: Models) -> None:
    """A model trained by the plumber image serves in the rpy2 image and the other way round."""
    for trained_by, serves in ((PLUMBER, RPY2), (RPY2, PLUMBER)):
        model = models.get(trained_by).model
        with serving(serves.example, volumes={model: "/opt/ml/model:ro"},
                     env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}, ready_timeout=serves.ready_timeout) as s:
            assert s.invoke(b"5.1,3.5,1.4,0.2\n6.9,3.1,5.4,2.1\n", "text/csv").text == "setosa\nvirginica\n"


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


@pytest.mark.parametrize("runtime", [PLUMBER, RPY2], ids=str)
def test_r_input_fn_output_fn(runtime: Runtime, tmp_path: Path) -> None:
    """input_fn/output_fn in model.R take over; NULL falls back to the codecs (the golden cases
    check the hooks' contract in every language; this checks both R servers wire them)."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "model.R").write_text(HOOKS)
    (tmp_path / "model").mkdir()
    with serving(runtime.image, volumes={code: "/opt/program:ro", tmp_path / "model": "/opt/ml/model:ro"},
                 env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}, ready_timeout=runtime.ready_timeout) as s:
        r = s.invoke(b"1,2\n3,4\n", "text/csv", "text/csv")
        assert (r.status, r.headers["content-type"], r.text) == (200, "text/x-sum", "sum=3\nsum=7\n")
        r = s.invoke(b"1,2\n", "text/csv", "application/json")
        assert r.status == 200 and json.loads(r.body) == {"predictions": [3]}
        r = s.invoke(b"5 6", "text/csv", "text/csv")  # input_fn's own format
        assert (r.status, r.text) == (200, "sum=11\n")


def test_r_sigterm_while_r_cannot_be_interrupted(tmp_path: Path) -> None:
    """R busy outside the interpreter (a blocking system()) never sees SIGINT: the forwarder's
    grace period then writes the failure file and exits 143 (T-17, T-21)."""
    ml = toy_job(tmp_path / "ml", {"mode": "blocked"})
    job = Container(PLUMBER.image, ["train"], env={"ROSETTA_STOP_GRACE": "2"},
                    volumes={ml: "/opt/ml", PLUMBER.toy: "/opt/program:ro"}).start()
    try:
        assert eventually(lambda: "fitting" in job.logs(), 60), job.logs()
        t0 = time.monotonic()
        assert job.kill("TERM")
        assert job.wait_exit(20) == 143 and time.monotonic() - t0 < 10, job.logs()
        lines = failure_lines(ml)
        assert lines[0] == "Stopped: received SIGTERM" and lines[1] == "" and "compiled code" in lines[2]
    finally:
        job.remove()


# -- Julia ----------------------------------------------------------------------------------------

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


def test_julia_sigterm_under_load_answers_accepted_requests(models: Models) -> None:
    """S-13: SIGTERM while 8 clients open a connection per request: every request sent before
    it is answered 200; connections accepted before it whose request comes 0.3 s AFTER it are
    answered too; new connections are refused afterwards; exit 0 within 30 s."""
    model = models.get(JULIA).model
    with serving(JULIA.example, volumes={model: "/opt/ml/model:ro"}, ready_timeout=JULIA.ready_timeout) as s:
        stop, results = threading.Event(), []  # type: ignore[var-annotated]
        threads = [threading.Thread(target=load_until, args=(s.host_port, stop, results)) for _ in range(8)]
        for t in threads:
            t.start()
        silent = [socket.create_connection(("127.0.0.1", s.host_port), timeout=20) for _ in range(4)]
        assert eventually(lambda: len(results) > 20, 30)
        t0 = time.monotonic()
        s.kill("TERM")
        time.sleep(0.3)  # the late requests come after the SIGTERM on purpose
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
        assert 0 in after  # refused once the listener closed


def test_julia_early_sigterm_is_never_lost(tmp_path: Path) -> None:
    """T-21 regression: julia 1.5 dropped a SIGINT landing while it compiled (2-2.5 s into a job here,
    which then ran until the 100 s watchdog). The entrypoint repeats it until the runtime acknowledges:
    a TERM at any moment of the start stops the job with exit 143 and the failure file."""
    delays = [0.5, 1.5, 2.0, 2.5, 3.0]
    outcomes: dict[float, tuple[int | None, float, str]] = {}

    def one(delay: float) -> None:
        ml = iris_job(tmp_path / f"ml-{delay}", {"epochs": "1000000000", "target": "species"})
        job = Container(JULIA.example, ["train"], volumes={ml: "/opt/ml"},
                        name=container_name(f"train-early-term-{delay}".replace(".", "-"))).start()
        try:
            time.sleep(delay)  # the moment of the start the SIGTERM lands in
            t0 = time.monotonic()
            job.kill("TERM")
            code = job.wait_exit(60)
            outcomes[delay] = (code, time.monotonic() - t0, "\n".join(failure_lines(ml)))
        finally:
            job.remove()

    threads = [threading.Thread(target=one, args=(d,)) for d in delays]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert sorted(outcomes) == delays, outcomes
    for delay, (code, took, failure) in outcomes.items():
        assert code == 143 and took < 30, (delay, code, took)
        assert failure.startswith("Stopped: received SIGTERM"), (delay, failure)
