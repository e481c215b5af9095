"""The R package's testthat suite, run inside the built image (CI has Docker, not R).

Fails when any testthat expectation fails; the R output is shown on failure.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sagemaker_rosetta.containers import run
from sagemaker_rosetta.engine import docker

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "rosetta/r:latest"
TESTS = ROOT / "runtimes" / "r" / "tests"

# stop_on_failure makes Rscript exit non-zero; the summary reporter lists every failure
SCRIPT = (
    'res <- testthat::test_dir("/rosetta-tests/testthat", package = "rosetta", load_package = "installed", '
    'reporter = "summary", stop_on_failure = TRUE); '
    'df <- as.data.frame(res); cat(sprintf("\\nTESTTHAT passed=%d failed=%d skipped=%d\\n", '
    "sum(df$passed), sum(df$failed), sum(df$skipped)))"
)


def test_testthat_suite_passes_in_image() -> None:
    # the checkout's tests (mounted), against the package installed in the image
    res = run(IMAGE, ["-e", SCRIPT], extra=["--entrypoint", "Rscript"],
              volumes={TESTS: "/rosetta-tests:ro"}, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]
    summary = [line for line in out.splitlines() if line.startswith("TESTTHAT ")]
    assert summary, out[-3000:]
    fields = dict(kv.split("=") for kv in summary[-1].split()[1:])
    assert int(fields["failed"]) == 0 and int(fields["passed"]) > 50, summary
    assert int(fields["skipped"]) == 0, summary


def test_image_ships_the_suite() -> None:
    """The image carries its own tests, so `docker run ... Rscript` works without a checkout."""
    cmd = [docker(), "run", "--rm", "--entrypoint", "ls", IMAGE, "/usr/local/share/rosetta/tests/testthat"]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert "test-routes.R" in res.stdout, res.stderr
