"""Helpers for the orchestrator tests (a unique module name: other test folders have conftests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ECHO_IMAGE = "rosetta-test/echo:latest"

# the SDK needs a region at import time and must never find real credentials in tests
os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                  SAGEMAKER_VALIDATE_ROLE="false")
os.environ.pop("AWS_PROFILE", None)


def apt_install(*packages: str) -> None:
    """Install Debian packages a test needs (the tests run as root on Debian, like CI)."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    res = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
                         env=env, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        res = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
                             env=env, capture_output=True, text=True, check=False)
    assert res.returncode == 0, f"apt-get install {packages} failed:\n{res.stderr[-2000:]}"


def rosetta(*args: str, guard: bool = False, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the orchestrator CLI in a fresh interpreter (``guard``: under the network guard)."""
    code = ("import sys; sys.path.insert(0, %r); " % str(HERE)
            + ("import netguard; netguard.install(); " if guard else "")
            + "from rosetta_orchestrator.cli import main; rc = main(sys.argv[1:]); "
            + ("import netguard as g; print('NETGUARD_ATTEMPTS', len(g.ATTEMPTS), file=sys.stderr); "
               "[print(a, file=sys.stderr) for a in g.ATTEMPTS]; " if guard else "")
            + "sys.exit(rc)")
    return subprocess.run([sys.executable, "-c", code, "pipeline", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, check=False, env={**os.environ, **(env or {})})


def load_echo() -> Any:
    from rosetta_orchestrator.loader import load

    return load(HERE / "pipelines" / "echo.py")


def rosetta_inprocess(*args: str) -> subprocess.CompletedProcess[str]:
    """``rosetta pipeline ARGS`` in this process (the SDK is imported once per test session), with
    the same result shape as :func:`rosetta`; the console is plain text here (not a terminal)."""
    import contextlib
    import io

    from rosetta_orchestrator.cli import main

    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["pipeline", *args])
    finally:
        os.chdir(cwd)
    return subprocess.CompletedProcess(["rosetta", "pipeline", *args], code, out.getvalue(), err.getvalue())
