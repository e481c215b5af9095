"""L0: what ``docker image inspect`` and the image's files tell (C-02, C-03, C-04, M-02)."""

from __future__ import annotations

import io
import subprocess
import tarfile

from rosetta_conformance.checks import check
from rosetta_conformance.harness import Harness
from rosetta_conformance.outcome import Outcome
from sagemaker_rosetta.engine import docker

SHELLS = {"sh", "bash", "dash", "ash", "zsh", "ksh"}
INITS = {"tini", "tini-static", "docker-init", "dumb-init"}
BIND_LABEL = "com.amazonaws.sagemaker.capabilities.accept-bind-to-port"


def _entrypoint(h: Harness) -> list[str]:
    ep = h.image_config().get("Entrypoint") or []
    return [str(x) for x in ep]


@check("C-02")
def exec_form_entrypoint(h: Harness) -> Outcome:
    ep = _entrypoint(h)
    sent = "docker image inspect → Config.Entrypoint"
    if not ep:
        # No ENTRYPOINT: `train`/`serve` are looked up on PATH and exec'd as PID 1 (AWS's own pattern).
        return Outcome(True, "no ENTRYPOINT: train/serve run directly as PID 1", sent, "null")
    first = ep[0].rsplit("/", 1)[-1]
    if first in SHELLS and "-c" in ep[1:3]:
        return Outcome(False, "shell-form (sh -c) entrypoint: the shell is PID 1 and does not forward SIGTERM",
                       sent, repr(ep))
    return Outcome(True, "exec-form entrypoint", sent, repr(ep))


@check("C-03")
def no_tini(h: Harness) -> Outcome:
    ep = _entrypoint(h)
    first = ep[0].rsplit("/", 1)[-1] if ep else ""
    ok = first not in INITS
    return Outcome(ok, "" if ok else f"{first} as entrypoint gets confused by the train/serve argument",
                   "docker image inspect → Config.Entrypoint", repr(ep))


@check("M-02")
def bind_to_port_label(h: Harness) -> Outcome:
    labels = h.image_config().get("Labels") or {}
    value = labels.get(BIND_LABEL)
    ok = str(value).lower() == "true"
    return Outcome(ok, "" if ok else "pipelines and multi-container endpoints refuse the image without it",
                   "docker image inspect → Config.Labels", f"{BIND_LABEL}={value!r}")


@check("C-04")
def nothing_under_opt_ml(h: Harness) -> Outcome:
    """List /opt/ml in the image with ``docker cp`` (no tools needed inside the image)."""
    h.image_config()
    name = f"rosetta-conform-c04-{h.run_id}"
    created = subprocess.run([docker(), "create", "--name", name, *h.label_args, h.image, "serve"],
                             capture_output=True, text=True, check=False)
    if created.returncode != 0:
        return Outcome(False, f"docker create failed: {created.stderr.strip()}", "docker create", "")
    try:
        res = subprocess.run([docker(), "cp", f"{name}:/opt/ml", "-"], capture_output=True, check=False)
        if res.returncode != 0:
            return Outcome(True, "no /opt/ml in the image", "docker cp IMAGE:/opt/ml -", "not found")
        with tarfile.open(fileobj=io.BytesIO(res.stdout)) as tar:
            files = [m.name for m in tar.getmembers() if not m.isdir()]
        ok = not files
        return Outcome(ok, "" if ok else "files under /opt/ml are hidden by SageMaker's mounts at run time",
                       "docker cp IMAGE:/opt/ml -", ", ".join(files[:8]) or "only empty directories")
    finally:
        subprocess.run([docker(), "rm", "-f", name], capture_output=True, check=False)
