"""T-13: a stopped training job saves checkpoints, and the restarted job resumes from them.

SageMaker syncs the checkpoint folder (checkpointconfig.json's LocalPath, default /opt/ml/checkpoints)
to S3 while a job runs and copies it back into the folder when the job restarts (managed spot
training; https://docs.aws.amazon.com/sagemaker/latest/dg/model-checkpoints.html). From outside,
"resumed" is visible only through what the image says: the manifest names the log line its training
prints when it starts from a checkpoint (``[training.checkpoint] resumed``). The first job starts
with an empty folder, so that line must NOT appear there; that makes the evidence mean something.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

from rosetta_conformance.checks import check
from rosetta_conformance.harness import Harness
from rosetta_conformance.outcome import Blocked, Inconclusive, Outcome, Skip
from sagemaker_rosetta import containers
from sagemaker_rosetta.containers import Container, DockerError, RunTimeout

LOCAL_PATH = "/opt/ml/checkpoints"
ADVICE = """the manifest does not say how the image shows that it resumed; if it saves checkpoints, add:

[training.checkpoint]
hyperparameters = { epochs = 100 }   # a run long enough to be stopped after its first checkpoint
delay = 5.0                          # seconds from start to SIGTERM
resumed = "resumed from epoch \\\\d+"  # a line your training logs when it starts from a checkpoint"""


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def _stopped_job(h: Harness, name: str, hps: dict[str, Any], delay: float,
                 first_file: float | None = None) -> tuple[Path, int | None, bool, str, float]:
    """A training job with a checkpoint folder, SIGTERM at ``delay`` s; with ``first_file``, at the first
    file in LocalPath after ``delay`` (a poll later, so a file being renamed into place is complete), or
    ``first_file`` s at the latest. ``(ml root, exit code, whether the signal landed, log, seconds)``."""
    tr = h.manifest.training
    assert tr is not None and tr.checkpoint is not None
    root = h._layout(name, hyperparameters=hps, repeat=tr.checkpoint.repeat, checkpoint_dir=LOCAL_PATH)
    job = Container(h.image, ["train"], env=tr.env, volumes={root: "/opt/ml"}, labels=h.labels,
                    name=containers.container_name("conform-checkpoint"))
    try:
        job.start()
    except DockerError as exc:
        raise Blocked("C-01", f"docker run failed: {exc}") from exc
    t0 = time.monotonic()
    try:
        if first_file is None:
            time.sleep(delay)
        else:
            seen = False
            while time.monotonic() - t0 < first_file and job.running():
                now_seen = bool(_files(root / "checkpoints"))
                if seen and now_seen and time.monotonic() - t0 >= delay:
                    break
                seen = now_seen
                time.sleep(0.1)
        stopped_at = time.monotonic() - t0
        landed = job.kill("TERM")
        code = job.wait_exit(tr.checkpoint.timeout)
        if code is None:
            raise Blocked("T-21", f"still running {tr.checkpoint.timeout:.0f} s after SIGTERM")
        return root, code, landed, job.logs(), stopped_at
    finally:
        job.remove()


@check("T-13")
def resumes_from_checkpoints(h: Harness) -> Outcome:
    h.require_training()
    tr = h.manifest.training
    assert tr is not None
    spec = tr.checkpoint
    if spec is None:
        raise Skip(ADVICE)
    pattern = re.compile(spec.resumed, re.MULTILINE)
    hps = {**tr.hyperparameters, **spec.hyperparameters}
    first_root, code, landed, first_log, stopped_at = _stopped_job(h, "checkpoint-1", hps, spec.delay)
    saved = _files(first_root / "checkpoints")
    retried = landed and code != 0 and not saved
    if retried:
        # stopped before its first checkpoint: on a loaded machine the job starts late, so the signal at
        # `delay` may land before the image could save anything; a second job is stopped once a file is
        # in LocalPath (an image that saves on SIGTERM was done in the first job)
        first_root, code, landed, first_log, stopped_at = _stopped_job(h, "checkpoint-1b", hps, spec.delay,
                                                                       first_file=tr.timeout)
        saved = _files(first_root / "checkpoints")
    sent = f"job 1 with checkpointconfig.json (LocalPath {LOCAL_PATH}), SIGTERM at {spec.delay:.1f} s (when that " \
           "left LocalPath empty, again, at its first file there); job 2 on a fresh /opt/ml with those files restored"
    got = f"job 1: exit {code}{' before the signal' if not landed else f' after SIGTERM at {stopped_at:.1f} s'}" \
          f"{' (second try)' if retried else ''}, LocalPath: {saved[:6]}"
    if retried and not saved:
        return Outcome(False, f"nothing in {LOCAL_PATH}: stopped at {spec.delay:.1f} s the job left nothing, and "
                       f"{'a whole run' if not landed else f'{stopped_at:.0f} s of training'} wrote nothing there "
                       "either: its progress is lost", sent, got)
    if landed and code == 0:
        raise Blocked("T-21", f"job 1 ran to completion after SIGTERM at {stopped_at:.1f} s (exit 0): it was not "
                              "stopped, so nothing shows a resume")
    if not landed:
        raise Inconclusive(f"job 1 ended (exit {code}) before SIGTERM at {stopped_at:.1f} s: make it longer "
                           "([training.checkpoint] hyperparameters or repeat) or signal earlier (delay)")
    if not saved:
        return Outcome(False, f"nothing in {LOCAL_PATH} when the job was stopped {stopped_at:.1f} s after it started: "
                       "its progress is lost", sent, got)
    if pattern.search(first_log):
        return Outcome(False, f"job 1 started with an empty {LOCAL_PATH} yet logged {spec.resumed!r}: the line "
                       "does not show a resume", sent, got)
    second_root = h._layout("checkpoint-2", hyperparameters=hps, repeat=spec.repeat, checkpoint_dir=LOCAL_PATH)
    shutil.rmtree(second_root / "checkpoints", ignore_errors=True)
    shutil.copytree(first_root / "checkpoints", second_root / "checkpoints")  # what SageMaker restores from S3
    for p in [second_root / "checkpoints", *(second_root / "checkpoints").rglob("*")]:
        p.chmod(0o777 if p.is_dir() else 0o666)
    t0 = time.monotonic()
    try:
        done = containers.run(h.image, ["train"], env=tr.env, volumes={second_root: "/opt/ml"}, labels=h.labels,
                              timeout=tr.timeout)
    except RunTimeout:
        return Outcome(False, f"job 2 still running after {tr.timeout:.0f} s", sent, got)
    log = done.stdout + done.stderr
    found = pattern.search(log)
    model = [p for p in (second_root / "model").rglob("*") if p.is_file()]
    got += f" | job 2: exit {done.returncode} in {time.monotonic() - t0:.1f} s, " \
           f"{'logged ' + repr(found.group(0)) if found else 'no line matching ' + repr(spec.resumed)}, " \
           f"{len(model)} model file(s)"
    if done.returncode != 0:
        return Outcome(False, f"job 2 failed: {log[-300:]}", sent, got)
    if not model:
        return Outcome(False, "job 2 wrote no model", sent, got)
    if not found:
        return Outcome(False, "job 2 did not resume from the restored checkpoints: it started over", sent, got)
    return Outcome(True, "", sent, got)
