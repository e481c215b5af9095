"""Proof that the suite can fail: every broken fixture image fails exactly its clause(s).

All fixtures are checked once per session, in parallel (each run is itself parallel), against every
profile (a multi-model breakage against that profile); each test then asserts on its fixture's report.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from conformance_fixture_images import MANIFEST, VARIANTS, Variant

from rosetta_conformance import Report, Status, load_manifest, run_suite

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def reports(fixture_images: dict[str, Variant]) -> dict[str, Report]:
    manifest = load_manifest(MANIFEST)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {v.name: pool.submit(run_suite, v.tag, manifest, profiles=list(v.profiles), jobs=4)
                   # the slowest (waits out a swallowed SIGTERM) first, so it overlaps the others
                   for v in sorted(VARIANTS, key=lambda v: v.name != "shell-entrypoint")}
        done = {name: f.result() for name, f in futures.items()}
    for name, report in done.items():
        print(f"fixture {name}: {report.seconds:.1f} s")
    return done


def _explain(report: Report) -> str:
    return "\n".join(f"{r.clause} {r.status.value}: {r.blocked_by or ''} {r.detail[:200]} | {r.received[:200]}"
                     for r in report.results if r.status is not Status.PASS)


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_fixture_fails_exactly_its_clauses(variant: Variant, reports: dict[str, Report]) -> None:
    report = reports[variant.name]
    failed = set(report.by_status(Status.FAIL))
    assert failed == set(variant.fails), _explain(report)
    # whatever could not run must be blocked by one of the intended failures, nothing else
    blockers = {r.blocked_by for r in report.results if r.status is Status.BLOCKED}
    assert blockers <= set(variant.fails), _explain(report)
    assert report.ok is (not variant.fails)
    assert not report.by_status(Status.SKIP), _explain(report)


def test_expected_failures_report_xfail_and_xpass(fixture_images: dict[str, Variant]) -> None:
    """A listed clause that fails is XFAIL (run still ok); one that passes is reported XPASS."""
    expected = {"M-02": "image has no bind-to-port label yet", "C-02": "thought the entrypoint was sh -c"}
    report = run_suite(fixture_images["no-label"].tag, load_manifest(MANIFEST), only=["M-02", "C-02", "C-03"],
                       expected=expected)
    status = {r.clause: r.status for r in report.results}
    assert status == {"M-02": Status.XFAIL, "C-02": Status.XPASS, "C-03": Status.PASS}
    assert report.ok and report.exit_code == 0
    assert next(r for r in report.results if r.clause == "M-02").reason == expected["M-02"]
