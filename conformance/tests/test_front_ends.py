"""The two front ends on real fixture images: ``rosetta conform`` and the pytest plugin."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conformance_fixture_images import MANIFEST, Variant

pytestmark = pytest.mark.docker

BIN = Path(sys.executable).parent


def test_cli_exit_code_reports_and_expected_failures(fixture_images: dict[str, Variant], tmp_path: Path) -> None:
    image = fixture_images["no-label"].tag
    cmd = [str(BIN / "rosetta"), "conform", image, "-m", str(MANIFEST), "-c", "M-02", "-c", "C-02",
           "-o", str(tmp_path / "out")]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "M-02" in res.stdout and "DOES NOT CONFORM" in res.stdout
    # stdout is a pipe: plain full-width lines, the received/notes column whole (no 80-column cut)
    row = next(line for line in res.stdout.splitlines() if line.startswith("M-02"))
    assert "com.amazonaws.sagemaker.capabilities.accept-bind-to-port=None" in row and len(row) > 120
    assert "…" not in res.stdout and "┃" not in res.stdout
    xml = ET.parse(next((tmp_path / "out").glob("*.xml"))).getroot()
    cases = {c.get("name", "").split()[0]: c for c in xml.iter("testcase")}
    assert set(cases) == {"M-02", "C-02"}
    assert cases["M-02"].find("failure") is not None and cases["C-02"].find("failure") is None
    md = next((tmp_path / "out").glob("*.md")).read_text()
    assert "| M-02 | FAIL |" in md and "Config.Labels" in md

    xfile = tmp_path / "expected-failures.toml"
    xfile.write_text('[expected-failures]\n"M-02" = "label lands in the next release"\n')
    res = subprocess.run([*cmd, "-x", str(xfile)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "XFAIL" in res.stdout


@pytest.mark.parametrize(("variant", "code"), [("good", 0), ("ignore-port", 1)])
def test_pytest_plugin_one_test_per_clause(fixture_images: dict[str, Variant], variant: str, code: int,
                                           tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    res = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "rosetta_conformance", "-q", "-p",
                          "no:cacheprovider", "--image", fixture_images[variant].tag, "--manifest", str(MANIFEST),
                          "--clause", "S-04", "--clause", "M-02", f"--junitxml={junit}"],
                         capture_output=True, text=True, check=False, cwd=tmp_path)
    assert res.returncode == code, res.stdout + res.stderr
    names = {c.get("name") for c in ET.parse(junit).getroot().iter("testcase")}
    assert names == {"test_clause[S-04]", "test_clause[M-02]"}
    if code:
        assert "S-04" in res.stdout and "nothing listens on 9123" in res.stdout


def test_plugin_is_inert_without_image(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text("def test_x():\n    assert True\n")
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                         capture_output=True, text=True, check=False, cwd=tmp_path)
    assert res.returncode == 0 and "1 passed" in res.stdout, res.stdout + res.stderr
