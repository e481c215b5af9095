"""Black-box SageMaker contract conformance suite.

Public API::

    from rosetta_conformance import load_manifest, run_suite, write_reports
    report = run_suite("my/image:tag", load_manifest("conformance.toml"))
    write_reports(report, "out/conformance")
    assert report.ok
"""

from rosetta_conformance.clauses import CLAUSES, PROFILES
from rosetta_conformance.manifest import Manifest, load_expected_failures
from rosetta_conformance.manifest import load as load_manifest
from rosetta_conformance.outcome import Result, Status
from rosetta_conformance.report import write_reports
from rosetta_conformance.runner import Report, run_suite

__all__ = ["CLAUSES", "PROFILES", "Manifest", "Report", "Result", "Status", "load_expected_failures",
           "load_manifest", "run_suite", "write_reports"]
