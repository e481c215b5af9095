"""L0: what ``docker image inspect`` and the image's files tell (C-02, C-03, C-04, C-08, M-02, MM-01)."""

from __future__ import annotations

from rosetta_conformance import platforms
from rosetta_conformance.checks import check
from rosetta_conformance.harness import Harness
from rosetta_conformance.outcome import Blocked, Outcome
from sagemaker_rosetta import local_images
from sagemaker_rosetta.dockerapi import DockerError

SHELLS = {"sh", "bash", "dash", "ash", "zsh", "ksh"}
INITS = {"tini", "tini-static", "docker-init", "dumb-init"}
BIND_LABEL = "com.amazonaws.sagemaker.capabilities.accept-bind-to-port"
MME_LABEL = "com.amazonaws.sagemaker.capabilities.multi-models"


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
    try:
        files = local_images.list_files(h.image, "/opt/ml", labels=h.labels)
    except DockerError as exc:
        return Outcome(False, f"docker create failed: {exc}", "docker create", "")
    if files is None:
        return Outcome(True, "no /opt/ml in the image", "docker cp IMAGE:/opt/ml -", "not found")
    ok = not files
    return Outcome(ok, "" if ok else "files under /opt/ml are hidden by SageMaker's mounts at run time",
                   "docker cp IMAGE:/opt/ml -", ", ".join(files[:8]) or "only empty directories")


@check("MM-01")
def multi_models_label(h: Harness) -> Outcome:
    labels = h.image_config().get("Labels") or {}
    value = labels.get(MME_LABEL)
    ok = str(value).lower() == "true"
    return Outcome(ok, "" if ok else "CreateModel refuses the image for a multi-model endpoint without it",
                   "docker image inspect → Config.Labels", f"{MME_LABEL}={value!r}")


@check("C-08")
def platform_matches(h: Harness) -> Outcome:
    """Static: ``exec format error`` only shows on AWS, so compare the image's platform with the
    engine's and with the instance type's before anything runs."""
    try:
        info = local_images.inspect(h.image)
        host_os, host_arch = local_images.engine_platform()
    except DockerError as exc:
        raise Blocked("C-01", f"image {h.image!r}: {exc}") from exc
    image_os, image_arch = str(info.get("Os") or ""), str(info.get("Architecture") or "")
    sent = "docker image inspect → Os/Architecture; docker version → Os/Arch"
    got = f"image {image_os}/{image_arch}, host {host_os}/{host_arch}"
    problems = []
    if (image_os, image_arch) != (host_os, host_arch):
        problems.append(f"built for {image_os}/{image_arch}, the host is {host_os}/{host_arch}")
    if h.instance_type:
        sent += f"; instance type {h.instance_type}"
        wanted = platforms.instance_architecture(h.instance_type)
        if wanted is None:
            got += f"; {h.instance_type}: no hardware to compare (local mode)"
        else:
            family = platforms.instance_family(h.instance_type)
            got += f"; {h.instance_type} ({family}) runs linux/{wanted}"
            if image_arch != wanted or image_os != "linux":
                problems.append(f"{h.instance_type} runs linux/{wanted} ({platforms.why(family)}): the job would "
                                f"fail with 'exec format error'; build with --platform linux/{wanted}")
    return Outcome(not problems, "; ".join(problems), sent, got)
