"""The short CI version of ``python -m bench.reliability``: the same bytes to every runtime image.

Bad-input matrix, generated payloads, schemathesis, slow-loris, a short soak and the faults, against
Python, R (plumber), R (rpy2) and Julia, on the session's server of each runtime (tests/conftest.py).
The long run (10,000 payloads, 120 s soak) writes docs/reliability.md.
"""

from __future__ import annotations

import importlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rosetta_testkit import openapi_fuzz
from rosetta_testkit import reliability as rel
from rosetta_testkit.cases import CASES
from rosetta_testkit.runtimes import RUNTIMES, Runtime
from rosetta_testkit.session import Reliability, Trained
from sagemaker_rosetta.containers import Server

pytestmark = pytest.mark.docker


def test_bad_input_matrix(rt: Runtime, server: Server, reliability: Reliability) -> None:
    assert len(CASES) >= 60
    matrix = reliability.matrix(rt)
    unexpected = {case: (r.status, r.records, r.body[:80]) for case, r in matrix.items() if not r.ok}
    assert not unexpected, f"{rt}: {unexpected}"
    assert rel.oversize(server.host_port) == 413


def test_generated_payloads_never_5xx(server: Server) -> None:
    failures: list[str] = []
    counts = rel.fuzz(server.host_port, 150, failures)
    assert counts["payloads"] == 300
    assert counts["server_errors"] == counts["no_answer"] == counts["wrong_record_count"] == 0, failures


def test_schemathesis_against_the_openapi_document(rt: Runtime, reliability: Reliability) -> None:
    found = reliability.openapi(rt)
    assert found.cases >= 100, found.figures()
    assert {200, 400} <= set(found.by_status), found.figures()  # valid and invalid requests were both sent
    assert not found.failures, found.failures[:10]


def test_schemathesis_sends_the_same_cases_after_more_modules_load(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Hypothesis draws literals of the local modules loaded so far: a run after more test modules were
    imported generated other cases, and the parity test compared different requests. Every run replays
    the cases generated once, whatever was imported in between."""
    def requests_sent() -> list[tuple[str, str, bytes]]:
        seen: list[tuple[str, str, bytes]] = []

        class Recorder(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                seen.append((self.command, self.path, self.rfile.read(int(self.headers["content-length"] or 0))))
                self.send_response(200)
                self.send_header("content-type", "text/csv")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"1\n")

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        with ThreadingHTTPServer(("127.0.0.1", 0), Recorder) as httpd:
            thread = threading.Thread(target=httpd.serve_forever, daemon=True)
            thread.start()
            openapi_fuzz.run(httpd.server_address[1], 40)
            httpd.shutdown()
        return seen

    first = requests_sent()
    (tmp_path / "more_constants.py").write_text("NUMBERS = [" + ", ".join(f"{i / 7!r}" for i in range(1, 200)) + "]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("more_constants")
    assert requests_sent() == first


def test_schemathesis_catches_a_wrong_width(server: Server) -> None:
    """The same run, told the model takes 3 features, must report valid requests being rejected."""
    found = openapi_fuzz.run(server.host_port, 40, n_features=3)
    assert any("Schema-valid request rejected" in f for f in found.failures), found.failures[:5]


def test_slowloris_does_not_block_ping(server: Server) -> None:
    answered, slowest = rel.slowloris(server.host_port, connections=30, seconds=3)
    assert answered >= 5 and slowest < 2


def test_short_soak(server: Server) -> None:
    soak = rel.soak(server, 5, connections=32)
    assert soak["errors"] == 0 and soak["rps"] > 0, soak


@pytest.mark.parametrize("rt", [rt for rt in RUNTIMES if rt.multiprocess], indirect=True, ids=str)
def test_kill_worker_under_load(rt: Runtime, server: Server) -> None:
    killed = rel.kill_worker_under_load(server, rt, seconds=3)
    assert killed["killed"] == 1 and killed["serving_after"] == 1
    assert killed["error_pct"] <= 5, killed  # target ≤ 1 % in the long run; CI machines are noisy


def test_sigterm_under_load(rt: Runtime, trained: Trained) -> None:
    server = Server(rt.example, volumes={trained.model: "/opt/ml/model:ro"}).start()
    try:
        server.wait_ready(rt.ready_timeout)
        for _ in range(20):  # warm, as a server in service is (the first requests may load code)
            assert server.invoke(b"5.1,3.5,1.4,0.2\n", "text/csv").status == 200
        stop = rel.sigterm_under_load(server)
    finally:
        server.remove()
    assert stop["exit_code"] == 0 and stop["exit_seconds"] < 30 and stop["failed_before_sigterm"] == 0, stop


def test_hyperparameters_never_reach_a_shell(rt: Runtime, tmp_path: Path) -> None:
    assert rel.injection(rt.example, tmp_path)["executed"] == 0
