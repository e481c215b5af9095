"""CI gate: every Rosetta example image passes the MUST profile with its own manifest, and the
multi-model profile when its runtime implements multi-model mode (D6).

CI builds the images before the tests, so a missing image FAILS here (it is never skipped). One suite
run per image checks both profiles (one training, one single-model server shared by them); a test per
profile asserts on its clauses. JUnit XML and Markdown reports land in out/conformance/.

Which runtimes implement D6 is the golden data's word: a language whose expected-differences file
lists multi-model cases (conformance/golden/expected-differences/<lang>.json, with the reason) gets
the MUST profile only, until that list is empty.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from rosetta_conformance import Report, Status, golden, load_expected_failures, load_manifest, run_suite, write_reports
from rosetta_conformance.clauses import CLAUSES
from sagemaker_rosetta import engine

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "out" / "conformance"

#: example image → (its manifest, the language of its runtime)
IMAGES = {
    "rosetta-example/iris-python:latest": ("examples/iris/python/conformance.toml", "python"),
    "rosetta-example/iris-r:latest": ("examples/iris/r/conformance.toml", "r"),
    "rosetta-example/iris-r:rpy2": ("examples/iris/r/conformance.toml", "r"),
    "rosetta-example/iris-julia:latest": ("examples/iris/julia/conformance.toml", "julia"),
}
MULTIMODEL_CASES = {c.id for c in golden.load().multimodel}


def profiles(lang: str) -> list[str]:
    """``must``, plus ``multi-model`` unless the language lists multi-model golden cases as not met."""
    lacking = MULTIMODEL_CASES & set(golden.expected_differences(lang))
    return ["must"] if lacking else ["must", "multi-model"]


#: (image, profile); the id ends in ``-<profile without hyphens>`` (conftest.py groups by image)
CHECKS = [(image, profile) for image, (_, lang) in IMAGES.items() for profile in profiles(lang)]


@pytest.fixture(scope="module")
def report_of() -> Callable[[str], Report]:
    """The suite run of an image (all its profiles), once per module: both tests of the image read it."""
    @functools.cache
    def run(image: str) -> Report:
        assert engine.image_exists(image), f"{image} is not built: run `rosetta build` and build examples/iris first"
        manifest_path, lang = IMAGES[image]
        manifest = load_manifest(ROOT / manifest_path)
        report = run_suite(image, manifest, profiles=profiles(lang),
                           expected=load_expected_failures(manifest.expected_failures))
        write_reports(report, OUT)
        print(f"{image}: {' + '.join(profiles(lang))} in {report.seconds:.1f} s")  # the per-image wall time
        return report
    return run


def test_every_example_image_gets_the_must_profile() -> None:
    assert {image for image, profile in CHECKS if profile == "must"} == set(IMAGES)
    assert ("rosetta-example/iris-python:latest", "multi-model") in CHECKS  # the reference runtime (D6)


@pytest.mark.parametrize(("image", "profile"), CHECKS, ids=[f"{i}-{p.replace('-', '')}" for i, p in CHECKS])
def test_runtime_image_conforms(image: str, profile: str, report_of: Callable[[str], Report]) -> None:
    results = [r for r in report_of(image).results if CLAUSES[r.clause].profile == profile]
    assert results, f"no {profile} clause ran"
    problems = [f"{r.clause} {r.status.value}: {r.blocked_by or ''} {r.detail[:300]} | sent {r.sent[:150]} "
                f"| received {r.received[:300]}" for r in results if not r.passed]
    assert not problems, "\n".join(problems)
    assert not [r for r in results if r.status is Status.SKIP], f"a {profile} clause was skipped: the manifest is " \
                                                                 "incomplete"
    assert not [r for r in results if r.status is Status.INCONCLUSIVE], \
        "a clause could not decide: see the manifest lines in its notes"
