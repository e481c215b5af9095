"""The xdist groups of ``./dev test`` (conftest.py at the repository root): tests that share a module
fixture, a server or a global land on one worker, so nothing expensive is set up twice."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _root_conftest() -> ModuleType:
    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_module_fixtures_are_set_up_once() -> None:
    group_of = _root_conftest().group_of
    golden = {group_of(f"tests/test_reliability_parity.py::test_golden_cases_on_the_image[rosetta/{i}]")
              for i in ("python:latest", "r:latest", "r:rpy2", "julia:latest")}
    golden.add(group_of("tests/test_reliability_parity.py::test_golden_bodies_agree_across_images"))
    assert golden == {"tests/test_reliability_parity.py"}
    assert group_of("tests/test_doctor.py::test_each_broken_fixture[csv-header]") == \
        group_of("tests/test_doctor.py::test_each_broken_fixture[good]")
    assert group_of("tests/test_endpoint.py::test_a[python]") == "tests/test_endpoint.py"


def test_shared_servers_images_and_networks() -> None:
    group_of = _root_conftest().group_of
    assert group_of("tests/test_serving.py::test_a[julia]") == group_of("tests/test_training.py::test_b[julia]") \
        == group_of("tests/test_reliability_parity.py::test_parity_across_runtimes") == "runtime-julia"
    assert group_of("tests/test_serving.py::test_a[r-rpy2]") == "runtime-r-rpy2"
    image = "conformance/tests/test_runtime_images.py::test_runtime_image_conforms[rosetta-example/iris-r:rpy2-{}]"
    assert group_of(image.format("must")) == group_of(image.format("multimodel")) != \
        group_of(image.replace("iris-r:rpy2", "iris-julia:latest").format("must"))
    assert group_of("orchestrator/tests/test_tuning.py::test_x") == group_of("orchestrator/tests/test_push.py::t")
    assert group_of("orchestrator/tests/test_errors.py::t") == "orchestrator/tests/test_errors.py"
    assert group_of("conformance/tests/test_front_ends.py::t") == \
        group_of("conformance/tests/test_broken_fixtures.py::t[good]") == "conformance-fixtures"


def test_the_longest_units_are_handed_out_first() -> None:
    conftest = _root_conftest()
    units = {"runtimes/python/tests/test_golden.py": 250, "tests/test_reliability_parity.py": 5,
             "orchestrator": 150, "conformance/tests/test_units.py": 37, "runtime-julia": 75}
    order = sorted(units, key=lambda u: conftest.unit_order(u, units[u]))
    assert order == ["orchestrator", "tests/test_reliability_parity.py", "runtime-julia",
                     "runtimes/python/tests/test_golden.py", "conformance/tests/test_units.py"]
