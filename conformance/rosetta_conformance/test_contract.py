"""One test per SageMaker contract clause; run with ``pytest --pyargs rosetta_conformance --image IMAGE``."""

from __future__ import annotations

import pytest

from rosetta_conformance.outcome import Status
from rosetta_conformance.report import describe
from rosetta_conformance.runner import Report


def test_clause(conformance_clause: str, conformance_report: Report, request: pytest.FixtureRequest) -> None:
    r = next(x for x in conformance_report.results if x.clause == conformance_clause)
    for key in ("clause", "title", "source", "sent", "received"):
        request.node.user_properties.append((key, getattr(r, key)))
    story = (f"{r.clause} {r.title} [{r.source}]\n  sent:     {r.sent}\n  received: {r.received}\n"
             f"  {describe(r)}")
    if r.status is Status.XFAIL:
        pytest.xfail(f"{r.clause}: {r.reason}")
    if r.status in (Status.SKIP, Status.INCONCLUSIVE):
        pytest.skip(f"{r.clause} {r.status.value}: {r.detail}")
    if r.status in (Status.FAIL, Status.BLOCKED):
        pytest.fail(story, pytrace=False)
