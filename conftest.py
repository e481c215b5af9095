"""How ``./dev test`` splits the suite over pytest-xdist workers (``-n 2 --dist loadgroup``).

Tests that share something expensive or global run as one unit, on one worker; the rest are
spread one by one. The groups come from the test ids (below), not from ``xdist_group`` marks:
with pytest 9.2, xdist 3.8's loadgroup drops the marks silently (pytest-dev/pytest-xdist#1386),
so this file gives xdist a scheduler that reads the groups itself. Without ``-n`` it does nothing.

- ``runtime-<key>``: the image suite's tests of one runtime (tests/, parametrised by runtime): they
  share that worker's serving container (the trained model is shared by all workers anyway).
- ``orchestrator``: the orchestrator's Docker tests count containers by step name and the SDK's
  local mode uses one fixed network (``sagemaker-local``), so two of them must not overlap.
- ``conformance-fixtures``: the tests on the conformance fixture images build them in a session fixture.
- ``endpoint-<module>``: tests/test_endpoint*.py share one module's endpoints (rosetta endpoint).
"""

from __future__ import annotations

import re
from typing import Any

RUNTIME_PARAM = re.compile(r"\[(?:[^\]]*-)?(r-plumber|r-rpy2|python|julia)(?:-[^\]]*)?\]$")
FIXTURE_TESTS = {"conformance/tests/test_broken_fixtures.py", "conformance/tests/test_front_ends.py"}


def group_of(nodeid: str) -> str | None:
    """The group a test belongs to, from its id (``path::name[params]``), or None (on its own)."""
    path, _, name = nodeid.partition("::")
    if path.startswith("orchestrator/tests/"):
        return "orchestrator"
    if path in FIXTURE_TESTS:
        return "conformance-fixtures"
    if path.startswith("tests/test_endpoint"):  # each module's endpoints serve all its tests
        return f"endpoint-{path}"
    if path.startswith("tests/"):
        runtime = RUNTIME_PARAM.search(name)
        if runtime:
            return f"runtime-{runtime.group(1)}"
        if name.startswith("test_julia_"):  # tests/test_runtime_extras.py
            return "runtime-julia"
        if name.startswith("test_r_"):
            return "runtime-r-plumber"
    return None


def pytest_xdist_make_scheduler(config: Any, log: Any) -> Any:
    """``--dist loadgroup``: xdist's load-scope scheduler, with a scope per group (else per test)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.rfind("@") > nodeid.rfind("]"):  # an xdist_group suffix, once xdist sets them again
                return nodeid.split("@")[-1]
            return group_of(nodeid) or nodeid

    return GroupScheduling(config, log)
