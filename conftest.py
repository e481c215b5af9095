"""How ``./dev test`` splits the suite over pytest-xdist workers (``-n 2 --dist loadgroup``).

Tests that share something expensive or global run in one group, so on one worker; the rest are
spread freely. Without ``-n`` the groups change nothing.

- ``runtime-<key>``: the image suite's tests of one runtime (tests/, parametrised by ``rt``): they
  share that worker's serving container (the trained model is shared by all workers anyway).
- ``orchestrator``: the orchestrator's Docker tests count containers by step name and the SDK's
  local mode uses one fixed network (``sagemaker-local``), so two of them must not overlap.
- ``conformance-fixtures``: the tests on the conformance fixture images build them in a session fixture.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
FIXTURE_TESTS = {"test_broken_fixtures.py", "test_front_ends.py"}


def _group(item: pytest.Item) -> str | None:
    rel = item.path.relative_to(ROOT).parts
    if rel[:2] == ("orchestrator", "tests"):
        return "orchestrator"
    if rel[:2] == ("conformance", "tests") and rel[-1] in FIXTURE_TESTS:
        return "conformance-fixtures"
    params = getattr(getattr(item, "callspec", None), "params", {})
    runtime = params.get("rt", params.get("runtime"))
    if rel[0] == "tests" and runtime is not None:
        return f"runtime-{runtime.key}"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = _group(item)
        if group and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(group))
