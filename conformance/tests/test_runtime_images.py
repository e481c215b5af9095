"""CI gate: every Rosetta example image passes the MUST profile with its own manifest.

CI builds the images before the tests, so a missing image FAILS here (it is never skipped).
JUnit XML and Markdown reports land in out/conformance/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rosetta_conformance import Status, load_expected_failures, load_manifest, run_suite, write_reports
from sagemaker_rosetta import engine

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "out" / "conformance"

IMAGES = {
    "rosetta-example/iris-python:latest": "examples/iris/python/conformance.toml",
    "rosetta-example/iris-r:latest": "examples/iris/r/conformance.toml",
    "rosetta-example/iris-r:rpy2": "examples/iris/r/conformance.toml",
    "rosetta-example/iris-julia:latest": "examples/iris/julia/conformance.toml",
}


@pytest.mark.parametrize("image", list(IMAGES))
def test_runtime_image_conforms(image: str) -> None:
    assert engine.image_exists(image), f"{image} is not built: run `rosetta build` and build examples/iris first"
    manifest = load_manifest(ROOT / IMAGES[image])
    expected = load_expected_failures(manifest.expected_failures)
    report = run_suite(image, manifest, profiles=["must"], expected=expected)
    write_reports(report, OUT)
    print(f"{image}: MUST profile in {report.seconds:.1f} s")  # the per-image wall time (benchmark)
    problems = [f"{r.clause} {r.status.value}: {r.blocked_by or ''} {r.detail[:300]} | sent {r.sent[:150]} "
                f"| received {r.received[:300]}" for r in report.results if not r.passed]
    assert report.ok, "\n".join(problems)
    assert not report.by_status(Status.SKIP), "a MUST clause was skipped: the manifest is incomplete"
    assert not report.by_status(Status.INCONCLUSIVE), "T-21 could not decide: see the manifest lines in its notes"
