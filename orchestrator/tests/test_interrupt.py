"""Ctrl-C during a local run removes every container the run started."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from orch_helpers import HERE, ROOT

from sagemaker_rosetta.engine import docker

pytestmark = pytest.mark.docker


def sleepers() -> list[str]:
    out = subprocess.run([docker(), "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True,
                         check=True).stdout.split()
    return [n for n in out if n.startswith(("rosetta-SleepA-", "rosetta-SleepB-"))]


def test_ctrl_c_removes_containers(echo_image: str, tmp_path: Path) -> None:
    before = set(sleepers())  # an earlier, killed run may have left its own: not this run's

    def ours() -> list[str]:
        return [n for n in sleepers() if n not in before]

    proc = subprocess.Popen(
        [sys.executable, "-m", "rosetta_orchestrator.cli", "pipeline", "run", str(HERE / "pipelines" / "slow.py"),
         "--local", "--store", str(tmp_path / "s3"), "--workdir", str(tmp_path / "runs")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a terminal's Ctrl-C reaches a foreground run; a runner started in the background (`cmd &`
        # in a script) hands SIGINT down ignored, and the CLI must not be tested in that state
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while len(ours()) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.3)
        assert len(ours()) == 2, "both steps should be running"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            for name in ours():  # do not leave sleepers for later runs
                subprocess.run([docker(), "rm", "-f", name], capture_output=True, check=False)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err
    assert ours() == []
