"""The Julia runtime's `Test` suite, run inside the built image (CI has Docker, not Julia).

Fails when any Julia test fails or errors; Julia's output is shown on failure.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from sagemaker_rosetta.containers import run
from sagemaker_rosetta.engine import docker

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "rosetta/julia:latest"
TESTS = ROOT / "runtimes" / "julia" / "test"
SRC = ROOT / "runtimes" / "julia" / "src"


def test_julia_test_suite_passes_in_image() -> None:
    # the checkout's tests (mounted), against the package in the image; Test exits non-zero on failure
    res = run(IMAGE, ["--startup-file=no", "/rosetta-tests/runtests.jl"], extra=["--entrypoint", "julia"],
              volumes={TESTS: "/rosetta-tests:ro"}, timeout=600)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]
    summary = re.search(r"^Rosetta\s*\|\s*(\d+)\s+(\d+)\s*$", out, re.MULTILINE)
    assert summary, out[-3000:]
    passed, total = int(summary.group(1)), int(summary.group(2))
    assert passed == total and total > 100, summary.group(0)


def test_image_ships_the_suite_and_the_checkout_sources() -> None:
    """The image carries its tests, and its sources are the checkout's (no stale build)."""
    cmd = [docker(), "run", "--rm", "--entrypoint", "cat", IMAGE, "/opt/rosetta/julia/Rosetta/src/http.jl"]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout == (SRC / "http.jl").read_text(), "rosetta/julia:latest is stale: run `rosetta build julia`"
