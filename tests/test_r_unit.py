"""The R package's testthat suite, run inside the built image (CI has Docker, not R).

Fails when any testthat expectation fails; the R output is shown on failure. The checkout's golden
cases are mounted read-only (``ROSETTA_GOLDEN_DIR``) for the golden-case runner (D5).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sagemaker_rosetta import images
from sagemaker_rosetta.containers import run

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[1]
IMAGE = images.tag("r")
TESTS = ROOT / "runtimes" / "r" / "tests"
GOLDEN = ROOT / "conformance" / "golden"

# stop_on_failure makes Rscript exit non-zero; the summary reporter lists every failure
SCRIPT = (
    'res <- testthat::test_dir("/rosetta-tests/testthat", package = "rosetta", load_package = "installed", '
    'reporter = "summary", stop_on_failure = TRUE); '
    'df <- as.data.frame(res); cat(sprintf("\\nTESTTHAT passed=%d failed=%d skipped=%d\\n", '
    "sum(df$passed), sum(df$failed), sum(df$skipped)))"
)


def test_testthat_suite_passes_in_image() -> None:
    # the checkout's tests (mounted), against the package installed in the image
    res = run(IMAGE, ["-e", SCRIPT], entrypoint="Rscript", timeout=300, env={"ROSETTA_GOLDEN_DIR": "/rosetta-golden"},
              volumes={TESTS: "/rosetta-tests:ro", GOLDEN: "/rosetta-golden:ro"})
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]
    summary = [line for line in out.splitlines() if line.startswith("TESTTHAT ")]
    assert summary, out[-3000:]
    fields = dict(kv.split("=") for kv in summary[-1].split()[1:])
    assert int(fields["failed"]) == 0 and int(fields["passed"]) > 50, summary
    assert int(fields["skipped"]) == 0, summary


def test_image_ships_the_suite() -> None:
    """The image carries its own tests, so `docker run ... Rscript` works without a checkout."""
    res = run(IMAGE, ["/usr/local/share/rosetta/tests/testthat"], entrypoint="ls")
    assert "test-routes.R" in res.stdout, res.stderr
