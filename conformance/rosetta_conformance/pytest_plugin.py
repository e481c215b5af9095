"""pytest front end: ``pytest --pyargs rosetta_conformance --image IMAGE [--manifest FILE]``.

Registered as a ``pytest11`` plugin, so it loads in every pytest run of a project that
installs Rosetta: it only adds options and stays inert unless ``--image`` is given
(the clause tests live in ``rosetta_conformance/test_contract.py`` and are collected
only with ``--pyargs rosetta_conformance``). One suite run per session feeds one test per
clause, named by its ID.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rosetta_conformance.clauses import select
from rosetta_conformance.manifest import load, load_expected_failures
from rosetta_conformance.report import write_reports
from rosetta_conformance.runner import Report, run_suite


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rosetta-conformance", "SageMaker contract conformance (rosetta_conformance)")
    group.addoption("--image", help="image to check against the SageMaker contract")
    group.addoption("--manifest", type=Path, help="conformance.toml for the image")
    group.addoption("--conformance-model-dir", type=Path, help="model directory to serve without training")
    group.addoption("--conformance-profile", default="must",
                    help="comma-separated: must, should, toolkit, multi-model, all")
    group.addoption("--instance-type", help="SageMaker instance type the image is for (C-08)")
    group.addoption("--expected-failures", type=Path, help="TOML of clauses known to fail")
    group.addoption("--conformance-report", type=Path, help="also write JUnit XML + Markdown reports here")
    group.addoption("--conformance-jobs", type=int, default=4, help="checks run in parallel")
    group.addoption("--clause", action="append", help="check only this clause ID (repeatable)")


def _profiles(config: pytest.Config) -> list[str]:
    return [s.strip() for s in str(config.getoption("conformance_profile")).split(",") if s.strip()]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "conformance_clause" not in metafunc.fixturenames:
        return
    config = metafunc.config
    if not config.getoption("image"):
        raise pytest.UsageError("rosetta_conformance: pass --image IMAGE (and usually --manifest conformance.toml)")
    ids = [c.id for c in select(_profiles(config), config.getoption("clause"))]
    metafunc.parametrize("conformance_clause", ids, ids=ids)


@pytest.fixture(scope="session")
def conformance_report(request: pytest.FixtureRequest) -> Report:
    config = request.config
    manifest = load(config.getoption("manifest"))
    expected = load_expected_failures(config.getoption("expected_failures") or manifest.expected_failures)
    model_dir = config.getoption("conformance_model_dir")
    report = run_suite(str(config.getoption("image")), manifest, profiles=_profiles(config),
                       only=config.getoption("clause"),
                       model_dir=Path(model_dir).resolve() if model_dir else None, expected=expected,
                       jobs=int(config.getoption("conformance_jobs")),
                       instance_type=config.getoption("instance_type"))
    out = config.getoption("conformance_report")
    if out:
        write_reports(report, out)
    return report
