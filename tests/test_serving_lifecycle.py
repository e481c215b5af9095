"""A serving container's life, in every runtime: its port, readiness, workers, stop and bad models.

Each test starts its own container (from the session's trained model or the toy program), because
it stops, breaks or reconfigures it; the shared server of tests/test_serving.py is not touched,
except by the worker kill, which the server must survive.
"""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from rosetta_testkit.jobs import ROW, eventually, iris_job, rows
from rosetta_testkit.runtimes import RUNTIMES, Runtime
from rosetta_testkit.session import Trained
from sagemaker_rosetta.containers import Response, Server, run, serving

pytestmark = pytest.mark.docker

MULTIPROCESS = [rt for rt in RUNTIMES if rt.multiprocess]


def listening_ports(pid: int) -> set[int]:
    """TCP ports in LISTEN in the network namespace of host PID ``pid`` (host /proc: no tools in the image)."""
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture
def toy_model(tmp_path: Path) -> Path:
    """A model dir for the toy program (its ``load`` reads nothing from it)."""
    model = tmp_path / "toy-model"
    model.mkdir()
    return model


def test_bind_to_port_then_stop_is_fast(rt: Runtime, trained: Trained) -> None:
    """SAGEMAKER_BIND_TO_PORT is the only port (S-04, M-03); `docker stop` drains and exits 0 (S-13)."""
    with serving(rt.example, port=9123, env={"SAGEMAKER_BIND_TO_PORT": "9123", "SAGEMAKER_MODEL_SERVER_WORKERS": "1"},
                 volumes={trained.model: "/opt/ml/model:ro"}, ready_timeout=rt.ready_timeout) as s:
        assert s.invoke(b"5.9,3.0,5.1,1.8", "text/csv").text == "virginica\n"
        pid = s.pid()
        assert pid is not None and listening_ports(pid) == {9123}
        t0 = time.monotonic()
        code = s.stop(timeout=20)
        took = time.monotonic() - t0
        assert code == 0 and took < rt.stop_seconds, (code, took, s.logs()[-2000:])


def test_ping_503_while_loading_then_200(rt: Runtime, toy_model: Path) -> None:
    """/ping answers at once while the model loads: 503, then 200 once it can predict (S-07, S-09)."""
    with serving(rt.image, ready=False, env={"TOY_LOAD_SECONDS": "4"},
                 volumes={rt.toy: "/opt/program:ro", toy_model: "/opt/ml/model:ro"}) as s:
        statuses: list[int] = []

        def answered_200() -> bool:
            try:
                r = s.request("GET", "/ping", timeout=2)
            except (OSError, http.client.HTTPException):
                return False
            assert r.seconds < 2
            statuses.append(r.status)
            return r.status == 200

        assert eventually(answered_200, rt.ready_timeout), s.logs()[-2000:]
        assert statuses[0] == 503 and set(statuses) == {200, 503}, statuses
        assert float(s.invoke(b"1,2", "text/csv").text) == 3


def test_ping_during_slow_request_and_sigterm_drains(rt: Runtime, toy_model: Path) -> None:
    """/ping answers within 2 s while the only worker predicts (S-09); SIGTERM lets the request finish (S-13)."""
    workers = "2" if rt.language == "r" else "1"  # R's workers are single-threaded processes
    with serving(rt.image, env={"SAGEMAKER_MODEL_SERVER_WORKERS": workers}, ready_timeout=rt.ready_timeout,
                 volumes={rt.toy: "/opt/program:ro", toy_model: "/opt/ml/model:ro"}) as s:
        assert float(s.invoke(b"1,2", "text/csv").text) == 3
        result: list[Response] = []
        slow = threading.Thread(target=lambda: result.append(s.invoke(b"-3,1", "text/csv")))
        slow.start()
        time.sleep(0.5)  # the request reaches the model, which sleeps 3 s
        ping = s.request("GET", "/ping", timeout=5)
        assert ping.status == 200 and ping.seconds < 2
        t0 = time.monotonic()
        assert s.kill("TERM")  # while the slow request is in flight
        slow.join(30)
        assert [r.status for r in result] == [200] and float(result[0].text) == -2  # drained, not cut off
        assert s.wait_exit(30) == 0 and time.monotonic() - t0 < 30


@pytest.mark.parametrize("rt", MULTIPROCESS, indirect=True, ids=str)
def test_killed_worker_is_replaced(rt: Runtime, server: Server) -> None:
    """kill -9 one worker under load: a new worker appears and every request succeeds again."""
    def workers() -> list[int]:
        return rt.workers(server.processes(), server.pid())

    assert eventually(lambda: len(workers()) == 2, 20), server.processes()
    before = workers()
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
    try:
        assert eventually(lambda: len(statuses) > 10, 10)
        os.kill(before[0], signal.SIGKILL)  # from the host: the image need not have `kill`
        replaced = eventually(lambda: len(workers()) == len(before) and before[0] not in workers(), 20, 0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    assert replaced, (before, workers(), server.logs()[-2000:])
    assert statuses.count(200) > 10
    for _ in range(20):  # after the restart every request succeeds again
        assert server.invoke(ROW, "text/csv").status == 200


@pytest.mark.parametrize("case", ["missing", "corrupt"])
def test_missing_or_corrupt_model_exits_with_the_reason(rt: Runtime, tmp_path: Path, case: str) -> None:
    """A server that cannot load its model stops (non-zero) and says why; it never answers /ping 200."""
    model = tmp_path / "model"
    model.mkdir()
    if case == "corrupt":
        (model / rt.model_file).write_bytes(b"\x00garbage, not a model\xff" * 10)
    s = Server(rt.example, volumes={model: "/opt/ml/model:ro"})
    t0 = time.monotonic()
    s.start()
    try:
        code = s.wait_exit(120)
        took, logs = time.monotonic() - t0, s.logs()
        assert code not in (None, 0), logs[-2000:]
        if case == "missing":
            assert rt.model_file in logs, logs[-2000:]  # the reason names the file it looked for
        else:  # the R flavours do not name the file (yet): each runtime's own words, until they agree
            assert rt.corrupt_model_reason in logs and took < 60, (took, logs[-2000:])
        assert "Traceback" not in logs and "Stacktrace" not in logs, logs[-2000:]  # a reason, not a backtrace
    finally:
        s.remove()


def test_trains_and_serves_as_non_root(rt: Runtime, tmp_path: Path) -> None:
    """`docker run --user 1000:1000`: training writes the model, serving loads it and predicts."""
    ml = iris_job(tmp_path / "ml", rt.hyperparameters)
    res = run(rt.example, ["train"], volumes={ml: "/opt/ml"}, user="1000:1000", timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert (ml / "model" / rt.model_file).stat().st_uid == 1000
    with serving(rt.example, volumes={ml / "model": "/opt/ml/model:ro"}, user="1000:1000",
                 env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}, ready_timeout=rt.ready_timeout) as s:
        assert s.invoke(rows(1), "text/csv").text == "setosa\n"
        assert s.exec("id", "-u").stdout.strip() == "1000"
        if rt.key == "julia":  # the package cache precompiled into the image is used as is
            depot = s.exec("sh", "-c", "ls /tmp/rosetta-julia-depot/compiled 2>&1 || true").stdout
            assert "No such file" in depot, depot
