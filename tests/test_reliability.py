"""The short CI version of ``python -m bench.reliability``: the same bytes to every runtime image.

Bad-input matrix, differential parity, generated payloads, slow-loris, a short soak and the faults,
against Python, R (plumber), R (rpy2) and Julia. The long run (10,000 payloads, 120 s soak) writes
docs/reliability.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import openapi_fuzz
from bench import reliability as rel
from bench.cases import CASES
from sagemaker_rosetta.containers import Server

pytestmark = pytest.mark.docker

RUNTIMES = list(rel.IMAGES)
Running = tuple[str, Server, Path]


@pytest.fixture(scope="module", params=RUNTIMES)
def runtime(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    name: str = request.param
    work = tmp_path_factory.mktemp(name)
    model = rel.train_model(rel.IMAGES[name], work)
    server = Server(rel.IMAGES[name], volumes={model: "/opt/ml/model:ro"}).start()
    try:
        server.wait_ready(120)
        yield name, server, work
    finally:
        server.remove()


def test_bad_input_matrix(runtime: Running) -> None:
    name, server, _ = runtime
    assert len(CASES) >= 60
    matrix = rel.run_matrix(server.host_port)
    rel.COLLECTED[name] = matrix  # compared in test_reliability_parity.py
    unexpected = {case: (r.status, r.records, r.body[:80]) for case, r in matrix.items() if not r.ok}
    assert not unexpected, f"{name}: {unexpected}"
    assert rel.oversize(server.host_port) == 413


def test_generated_payloads_never_5xx(runtime: Running) -> None:
    _, server, _ = runtime
    failures: list[str] = []
    counts = rel.fuzz(server.host_port, 150, failures)
    assert counts["payloads"] == 300
    assert counts["server_errors"] == counts["no_answer"] == counts["wrong_record_count"] == 0, failures


def test_schemathesis_against_the_openapi_document(runtime: Running) -> None:
    name, server, _ = runtime
    found = openapi_fuzz.run(server.host_port, 150)
    rel.COLLECTED_OPENAPI[name] = found.sequence  # compared in test_reliability_parity.py
    assert found.cases >= 100, found.figures()
    assert {200, 400} <= set(found.by_status), found.figures()  # valid and invalid requests were both sent
    assert not found.failures, found.failures[:10]


def test_schemathesis_catches_a_wrong_width(runtime: Running) -> None:
    """The same run, told the model takes 3 features, must report valid requests being rejected."""
    _, server, _ = runtime
    found = openapi_fuzz.run(server.host_port, 40, n_features=3)
    assert any("Schema-valid request rejected" in f for f in found.failures), found.failures[:5]


def test_slowloris_does_not_block_ping(runtime: Running) -> None:
    _, server, _ = runtime
    answered, slowest = rel.slowloris(server.host_port, connections=30, seconds=3)
    assert answered >= 5 and slowest < 2


def test_short_soak_and_faults(runtime: Running) -> None:
    name, server, _ = runtime
    soak = rel.soak(server, 5, connections=32)
    assert soak["errors"] == 0 and soak["rps"] > 0, soak
    if name in rel.MULTIPROCESS:
        killed = rel.kill_worker_under_load(server, seconds=3)
        assert killed["killed"] == 1 and killed["serving_after"] == 1
        assert killed["error_pct"] <= 5, killed  # target ≤ 1 % in the long run; CI machines are noisy
    stop = rel.sigterm_under_load(server)
    assert stop["exit_code"] == 0 and stop["exit_seconds"] < 30 and stop["failed_before_sigterm"] == 0, stop


def test_corrupt_model_and_injection(runtime: Running) -> None:
    name, _, work = runtime
    corrupt = rel.corrupt_model(rel.IMAGES[name], work)
    assert corrupt["exit_code"] not in (0, -1) and corrupt["reason_in_log"] == 1, corrupt
    assert rel.injection(rel.IMAGES[name], work)["executed"] == 0


def test_trains_and_serves_as_non_root(runtime: Running) -> None:
    name, _, work = runtime
    result = rel.non_root(rel.IMAGES[name], work)
    assert result["trained"] == 1 and result["serve_status"] == 200 and result["uid"] == "1000", result
