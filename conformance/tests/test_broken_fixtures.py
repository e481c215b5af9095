"""Proof that the suite can fail: every broken fixture image fails exactly its clause(s).

All fixtures are checked once per session, in parallel (each run is itself parallel),
against every profile; each test then asserts on its fixture's report.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import MANIFEST, VARIANTS, Variant

from rosetta_conformance import Report, Status, load_manifest, run_suite

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def reports(fixture_images: dict[str, Variant]) -> dict[str, Report]:
    manifest = load_manifest(MANIFEST)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {v.name: pool.submit(run_suite, v.tag, manifest, profiles=["must", "should"], jobs=4)
                   for v in fixture_images.values()}
        return {name: f.result() for name, f in futures.items()}


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
