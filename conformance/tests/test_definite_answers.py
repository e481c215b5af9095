"""Issue 13.2: a definite answer to the sample ends the wait at once, with the answer in the report.

Before the fix each serving clause retried a refused sample until ``ready_timeout`` (242.7 s here
with ready_timeout = 240); now the clause fails in seconds, quoting the server's message.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conformance_fixture_images import Variant

from rosetta_conformance import Status, load_manifest, run_suite

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 240


def test_a_refused_sample_fails_at_once(fixture_images: dict[str, Variant], tmp_path: Path) -> None:
    manifest = tmp_path / "wrong-width.toml"
    manifest.write_text(f"""
[training]
channels = {{ train = "{ROOT / 'examples/iris/data/train.csv'}" }}
hyperparameters = {{ target = "species" }}
[serving]
ready_timeout = {READY_TIMEOUT}
[[serving.payloads]]
content_type = "text/csv"
body = "5.1,3.5,1.4\\n6.2,2.9,4.3\\n"
records = 2
""")
    report = run_suite(fixture_images["good"].tag, load_manifest(manifest), only=["S-01", "S-03", "S-09", "S-08"])
    status = {r.clause: r for r in report.results}
    assert status["S-03"].status is Status.FAIL and status["S-01"].status is Status.FAIL
    assert "row 1 has 3 columns, expected 4" in status["S-03"].detail
    assert "400" in status["S-03"].received
    assert status["S-09"].status is Status.BLOCKED and status["S-09"].blocked_by == "S-03"
    assert status["S-08"].status is Status.PASS  # /ping itself was fine
    # seconds, not the health-check window: the refusal is not retried
    assert report.seconds < READY_TIMEOUT / 4, f"took {report.seconds:.1f} s"
