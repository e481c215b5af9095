"""How ``./dev test`` splits the suite over pytest-xdist workers (``-n 2 --dist loadgroup``).

Tests that share something expensive or global run as one unit, on one worker; so do the tests of
one module (a module-scoped fixture is then set up once, not once per worker that gets one of its
tests). The groups come from the test ids (below), not from ``xdist_group`` marks: with pytest 9.2,
xdist 3.8's loadgroup drops the marks silently (pytest-dev/pytest-xdist#1386), so this file gives
xdist a scheduler that reads the groups itself. Without ``-n`` it does nothing.

- ``runtime-<key>``: the image suite's tests of one runtime (tests/, parametrised by runtime): they
  share that worker's serving container (the trained model is shared by all workers anyway). The
  cross-runtime status parity tests join ``runtime-julia``: they need every runtime's server, and
  Julia's is the one that is slow to start.
- ``orchestrator``: the orchestrator's Docker tests count containers by step name and the SDK's
  local mode uses one fixed network (``sagemaker-local``), so two of them must not overlap; its
  modules without Docker (``ORCHESTRATOR_NO_DOCKER``) are units of their own.
- ``conformance-fixtures``: the tests on the conformance fixture images build them in a session fixture.
- ``conformance/tests/test_runtime_images.py[<image>]``: both profiles of one example image read one
  suite run; the images are separate units.
- anything else: its module.
"""

from __future__ import annotations

import re
from typing import Any

RUNTIME_PARAM = re.compile(r"\[(?:[^\]]*-)?(r-plumber|r-rpy2|python|julia)(?:-[^\]]*)?\]$")
FIXTURE_TESTS = {"conformance/tests/test_broken_fixtures.py", "conformance/tests/test_front_ends.py"}


#: orchestrator test modules that start no container: free to run beside the Docker ones
ORCHESTRATOR_NO_DOCKER = {f"orchestrator/tests/{m}.py" for m in (
    "test_aws_moto", "test_control_units", "test_definition", "test_errors", "test_interpreter")}
RUNTIME_IMAGES_TESTS = "conformance/tests/test_runtime_images.py"
STATUS_PARITY = ("tests/test_reliability_parity.py::test_parity_across_runtimes",
                 "tests/test_reliability_parity.py::test_schemathesis_parity_across_runtimes")


def group_of(nodeid: str) -> str:
    """The group a test belongs to, from its id (``path::name[params]``)."""
    path, _, name = nodeid.partition("::")
    if path.startswith("orchestrator/tests/"):
        return path if path in ORCHESTRATOR_NO_DOCKER else "orchestrator"
    if path in FIXTURE_TESTS:
        return "conformance-fixtures"
    if path == RUNTIME_IMAGES_TESTS and "[" in name:  # test[<image>-<profile>]
        return f"{path}[{name.split('[', 1)[1].rsplit('-', 1)[0]}]"
    if nodeid.startswith(STATUS_PARITY):
        return "runtime-julia"
    if path.startswith("tests/") and not path.startswith("tests/test_endpoint"):
        runtime = RUNTIME_PARAM.search(name)
        if runtime:
            return f"runtime-{runtime.group(1)}"
        if name.startswith("test_julia_"):  # tests/test_runtime_extras.py
            return "runtime-julia"
        if name.startswith("test_r_"):
            return "runtime-r-plumber"
    return path  # tests/test_endpoint*.py: each module's endpoints serve all its tests


#: the units that take longest, longest first: handed out before the rest (xdist would order units by
#: their number of tests, which puts a 5-test module of long runs last and leaves one worker idle)
LONGEST_FIRST = ("orchestrator", "conformance-fixtures", "tests/test_reliability_parity.py", "runtime-julia",
                 "tests/test_doctor.py", "runtime-r-rpy2", "runtime-r-plumber", "runtime-python")


def unit_order(scope: str, tests: int) -> tuple[int, int]:
    """Sort key of a unit of work: the listed long ones in their order, then by number of tests."""
    rank = LONGEST_FIRST.index(scope) if scope in LONGEST_FIRST else len(LONGEST_FIRST)
    return rank, -tests


def pytest_xdist_make_scheduler(config: Any, log: Any) -> Any:
    """``--dist loadgroup``: xdist's load-scope scheduler, with a scope per group (else per module)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):  # type: ignore[misc]
        _ordered = False

        def _split_scope(self, nodeid: str) -> str:
            if nodeid.rfind("@") > nodeid.rfind("]"):  # an xdist_group suffix, once xdist sets them again
                return nodeid.split("@")[-1]
            return group_of(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            if not self._ordered:  # the first call comes right after schedule() filled the queue
                self._ordered = True
                units = sorted(self.workqueue.items(), key=lambda unit: unit_order(unit[0], len(unit[1])))
                self.workqueue.clear()
                self.workqueue.update(units)
            super()._assign_work_unit(node)

    return GroupScheduling(config, log)
