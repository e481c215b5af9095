"""The Julia runtime's `Test` suite, run inside the built image (CI has Docker, not Julia).

Fails when any Julia test fails or errors; Julia's output is shown on failure. The checkout's golden
cases are mounted read-only (``ROSETTA_GOLDEN_DIR``) for the golden-case runner (D5).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sagemaker_rosetta import images
from sagemaker_rosetta.containers import run

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
IMAGE = images.tag("julia")
TESTS = ROOT / "runtimes" / "julia" / "test"
SRC = ROOT / "runtimes" / "julia" / "src"
GOLDEN = ROOT / "conformance" / "golden"


def test_julia_test_suite_passes_in_image() -> None:
    # the checkout's tests (mounted), against the package in the image; Test exits non-zero on failure
    res = run(IMAGE, ["--startup-file=no", "/rosetta-tests/runtests.jl"], entrypoint="julia", timeout=600,
              env={"ROSETTA_GOLDEN_DIR": "/rosetta-golden"},
              volumes={TESTS: "/rosetta-tests:ro", GOLDEN: "/rosetta-golden:ro"})
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]
    summary = re.search(r"^Rosetta\s*\|\s*(\d+)\s+(\d+)\s*$", out, re.MULTILINE)
    assert summary, out[-3000:]
    passed, total = int(summary.group(1)), int(summary.group(2))
    assert passed == total and total > 100, summary.group(0)


def test_image_ships_the_suite_and_the_checkout_sources() -> None:
    """The image carries its tests, and its sources are the checkout's (no stale build)."""
    res = run(IMAGE, ["/opt/rosetta/julia/Rosetta/src/http.jl"], entrypoint="cat")
    assert res.returncode == 0, res.stderr
    assert res.stdout == (SRC / "http.jl").read_text(), f"{IMAGE} is stale: run `rosetta build julia`"
