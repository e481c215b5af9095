"""Differential parity: the same request bytes give the same answer in every runtime.

The golden cases (conformance/golden: serving.json and multimodel.json) run against the four runtime
images over HTTP: every image must give each case's expected status, records (parsed values) and exact
message, unless the case is in that language's expected-differences file with a reason; and the four
images must agree with each other on the body of every serving case none of them lists (parsed records,
first message line), not only on the status. One run per image serves all its cases (one container per
setup and serving environment; the multi-model cases share one per setup and environment, emptied
between cases), and trained setups come from a cache keyed by image ID (golden_cache.py) when this
image trained them before.

The status parity of the bad-input matrix and of the schemathesis cases compares what the session's
``reliability`` fixture collects for every runtime; each test asks for all four itself, so it passes or
fails the same whether it runs alone, first or after tests/test_reliability.py, on any xdist worker.
The schemathesis cases are generated once per process and replayed to every runtime (openapi_fuzz).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from rosetta_conformance import golden
from rosetta_conformance.golden_images import RUNTIME_IMAGES, GoldenRun
from rosetta_conformance.outcome import Status
from rosetta_conformance.runner import Report
from rosetta_testkit import openapi_fuzz
from rosetta_testkit import reliability as rel
from rosetta_testkit.runtimes import RUNTIMES
from rosetta_testkit.session import OPENAPI_EXAMPLES, Reliability
from sagemaker_rosetta import engine

pytestmark = pytest.mark.docker

IMAGES = list(RUNTIME_IMAGES)


@pytest.fixture(scope="module")
def golden_runs() -> dict[str, tuple[Report, GoldenRun]]:
    missing = [i for i in IMAGES if not engine.image_exists(i)]
    assert not missing, f"{missing} not built: run `rosetta build python r r-rpy2 julia` first"

    def one(image: str) -> tuple[Report, GoldenRun]:
        # serving cases only: the training cases run in-process in each language's own tests, and against an
        # image with `rosetta conform IMAGE --golden`
        runner = GoldenRun(image, RUNTIME_IMAGES[image], jobs=2, training=False)
        return runner.run(), runner

    with ThreadPoolExecutor(2) as pool:  # two images at a time: each run is itself parallel
        done = dict(zip(IMAGES, pool.map(one, IMAGES), strict=True))
    for image, (report, run) in done.items():  # where the time goes (tests/README.md)
        counts = {s.value: len(report.by_status(s)) for s in Status if report.by_status(s)}
        spent = ", ".join(f"{k} {v:.0f}" for k, v in sorted(run.figures.items()))
        print(f"golden cases on {image}: {counts} in {report.seconds:.1f} s ({spent})")
    return done


@pytest.mark.parametrize("image", IMAGES)
def test_golden_cases_on_the_image(image: str, golden_runs: dict[str, tuple[Report, GoldenRun]]) -> None:
    """Each case's status, records and message, as the case says; listed differences must still differ."""
    report, _ = golden_runs[image]
    wrong = [f"{r.clause} [{r.source}]: {r.detail} | sent {r.sent[:160]} | got {r.received[:200]}"
             for r in report.results if r.status is Status.FAIL]
    stale = [f"{r.clause} passes: remove it from expected-differences ({r.reason})"
             for r in report.results if r.status is Status.XPASS]
    assert report.results, "no golden cases ran"
    assert not wrong + stale, f"{len(wrong)} of {len(report.results)} cases differ on {image}:\n" + "\n".join(
        wrong + stale)


def test_golden_bodies_agree_across_images(golden_runs: dict[str, tuple[Report, GoldenRun]]) -> None:
    """Same bytes in, same parsed body out, on every image (cases no image lists as a difference)."""
    runs = {image: run for image, (_, run) in golden_runs.items()}
    listed = set().union(*(run.expected for run in runs.values()))
    cases = next(iter(runs.values())).cases.cases
    disagreements = []
    for case in cases:
        if case.id in listed:
            continue
        answers = {image: run.answers.get(case.id) for image, run in runs.items()}
        got = {image: golden.normalized(a.response) if a is not None and a.response is not None else None
               for image, a in answers.items()}
        reference_image, reference = next(iter(got.items()))
        # a case with a message pattern documents that the words may differ (a JSON parser's own): status only
        loose = "message_pattern" in case.expect
        for image, value in got.items():
            if value is None or reference is None or not (
                    value[0] == reference[0] if loose else golden.agree(value, reference)):
                disagreements.append(f"{case.id}: {reference_image} {reference!r:.160} vs {image} {value!r:.160}")
    assert not disagreements, f"{len(disagreements)} body disagreements:\n" + "\n".join(disagreements)


def test_parity_across_runtimes(reliability: Reliability) -> None:
    """The bad-input matrix gets the same status from every runtime, case by case."""
    matrices = {rt.key: reliability.matrix(rt) for rt in RUNTIMES}
    assert set(matrices) == set(rel.IMAGES)
    assert rel.parity(matrices) == []


def test_schemathesis_parity_across_runtimes(reliability: Reliability) -> None:
    """The derandomized schemathesis cases get the same status from every runtime, case by case."""
    sequences = {rt.key: reliability.openapi(rt).sequence for rt in RUNTIMES}
    assert set(sequences) == set(rel.IMAGES)
    cases = [openapi_fuzz.describe(c) for c in openapi_fuzz.generated(OPENAPI_EXAMPLES)]
    assert rel.openapi_parity(sequences, cases) == []
