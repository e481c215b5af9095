"""`rosetta conform IMAGE --golden`: golden cases against a runtime image over HTTP, end to end.

A small case folder (two setups' worth of the real format) keeps it quick; the full set runs
against all four images in tests/test_reliability_parity.py. One case expects a wrong record on
purpose: the run must report exactly that case as failed, with the body it got.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rosetta_conformance import golden

pytestmark = pytest.mark.docker

BIN = Path(sys.executable).parent
IMAGE = "rosetta/python:latest"
TRAIN = {"train": {"train.csv": "a,b,c,y\n1,2,3,6\n4,5,6,15\n"}}


def _cases(root: Path) -> None:
    shutil.copytree(golden.golden_dir() / "models" / "python", root / "models" / "python")
    (root / "serving.json").write_text(json.dumps({
        "setups": {"plain": {"program": "plain", "hyperparameters": {"target": "y"}, "channels": TRAIN},
                   "scaled": {"program": "plain", "hyperparameters": {"target": "y", "scale": "2"}, "channels": TRAIN}},
        "cases": [
            {"id": "csv-two-rows", "clause": "B-08", "setup": "plain",
             "request": {"method": "POST", "path": "/invocations", "headers": {"Content-Type": "text/csv"},
                         "body": "1,2,3\n4,5,6\n"},
             "expect": {"status": 200, "content_type": "text/csv", "records": [[6], [15]]}},
            {"id": "json-scaled", "clause": "B-08", "setup": "scaled",
             "request": {"method": "POST", "path": "/invocations",
                         "headers": {"Content-Type": "application/json", "Accept": "application/json"},
                         "body": "[[1, 2, 3]]"},
             "expect": {"status": 200, "records": [[12]]}},
            {"id": "wrong-on-purpose", "clause": "B-08", "setup": "plain",
             "request": {"method": "POST", "path": "/invocations", "headers": {"Content-Type": "text/csv"},
                         "body": "1,1,1\n"},
             "expect": {"status": 200, "records": [[4]]}},
        ]}))
    (root / "training.json").write_text(json.dumps({"cases": [
        {"id": "fit-raises", "clause": "T-17", "program": "plain",
         "hyperparameters": {"target": "y", "fail": "fit"}, "channels": TRAIN,
         "expect": {"exit": 1, "failure_pattern": "UserCodeError: .*fit failed on purpose.*"}}]}))


def test_golden_front_end_on_a_runtime_image(tmp_path: Path) -> None:
    root = tmp_path / "golden"
    _cases(root)
    out = tmp_path / "out"
    res = subprocess.run([str(BIN / "rosetta"), "conform", IMAGE, "--golden", "--golden-dir", str(root),
                          "-o", str(out)], capture_output=True, text=True, check=False, timeout=900)
    assert res.returncode == 1, res.stdout + res.stderr  # the wrong-on-purpose case
    rows = {line.split()[0]: line for line in res.stdout.splitlines() if line.split()[:1] and
            line.split()[0] in {"csv-two-rows", "json-scaled", "wrong-on-purpose", "fit-raises"}}
    assert set(rows) == {"csv-two-rows", "json-scaled", "wrong-on-purpose", "fit-raises"}, res.stdout
    assert " PASS " in rows["csv-two-rows"] and " PASS " in rows["json-scaled"], res.stdout
    assert " PASS " in rows["fit-raises"], res.stdout
    assert " FAIL " in rows["wrong-on-purpose"] and "records [[3.0]], want [[4]]" in rows["wrong-on-purpose"]
    md = next(out.glob("*-golden.md")).read_text()
    assert "| wrong-on-purpose | FAIL |" in md

    (root / "expected-differences").mkdir()
    (root / "expected-differences" / "python.json").write_text(json.dumps({"wrong-on-purpose": "a test of XFAIL"}))
    again = subprocess.run([str(BIN / "rosetta"), "conform", IMAGE, "--golden", "--golden-dir", str(root),
                            "-o", str(out), "-j", "2"], capture_output=True, text=True, check=False, timeout=900)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "XFAIL" in again.stdout
