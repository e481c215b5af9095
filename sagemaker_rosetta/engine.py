"""Find or start a Docker engine and seed the offline base images.

Installing and starting the engine is done with Debian's tools and ``dockerd`` (no SDK can);
everything else talks to the engine through :mod:`sagemaker_rosetta.dockerapi`.
Setup must work on a fresh Debian machine as root with no container registry:
we use a reachable daemon, else install Debian's ``docker.io`` and start ``dockerd``
in the background (log in :data:`DOCKERD_LOG`), else stop with a clear message.
Base images are pulled when a registry answers, else built with ``debootstrap`` and
``docker import`` under the public name the Dockerfiles use, so the same Dockerfile
works on a laptop with internet and here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sagemaker_rosetta import dockerapi, local_images
from sagemaker_rosetta.dockerapi import DockerError

DOCKERD_LOG = Path("/var/log/rosetta-dockerd.log")

#: public image name -> Debian suite debootstrapped when the image cannot be pulled
BASE_IMAGES: dict[str, str] = {
    "debian:bookworm-slim": "bookworm",
    "debian:bullseye-slim": "bullseye",
}

DEFAULT_MIRROR = "http://deb.debian.org/debian"

Say = Callable[[str], None]


class EngineError(RuntimeError):
    """The Docker engine is missing and cannot be set up here; the message says what to do."""


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, text=True, capture_output=True, check=False, **kw)  # type: ignore[call-overload, no-any-return]


def docker() -> str:
    """The docker CLI: only for BuildKit builds (:func:`build_cli`); the engine API is :mod:`.dockerapi`."""
    path = shutil.which("docker") or ("/usr/bin/docker" if Path("/usr/bin/docker").exists() else None)
    if not path:
        raise EngineError("no docker CLI found: install Docker (on Debian: apt-get install docker.io)")
    return path


def build_cli() -> tuple[str, dict[str, str]]:
    """A docker CLI that can run BuildKit builds (needed for build-time secrets), with its env.

    A CLI without the buildx plugin fails with BuildKit enabled; Debian's own CLI
    (``/usr/bin/docker`` from docker.io 20.10) has BuildKit built in.
    """
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    first = docker()
    if _run([first, "buildx", "version"]).returncode == 0:
        return first, env
    for candidate in ("/usr/bin/docker", "/usr/local/bin/docker"):
        if Path(candidate).exists() and candidate != first:
            return candidate, env
    return first, env


def engine_ready() -> bool:
    return dockerapi.ping()


def ensure_engine(say: Say = print, timeout: float = 90.0) -> None:
    """Make sure a Docker engine answers, installing and starting one if we may."""
    if engine_ready():
        return
    if os.geteuid() != 0:
        raise EngineError(
            "no Docker engine answers and we are not root: start Docker, or run setup as root "
            "(it installs Debian's docker.io and starts dockerd)"
        )
    if not shutil.which("dockerd"):
        if not shutil.which("apt-get"):
            raise EngineError("no Docker engine and no apt-get: install Docker Engine yourself, then rerun")
        say("installing Docker Engine (Debian docker.io)…")
        _apt_install(["docker.io"])
    say(f"starting dockerd (log: {DOCKERD_LOG})…")
    DOCKERD_LOG.parent.mkdir(parents=True, exist_ok=True)
    with DOCKERD_LOG.open("ab") as log:
        subprocess.Popen(
            ["dockerd"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine_ready():
            say("Docker engine is up")
            return
        time.sleep(0.5)
    tail = DOCKERD_LOG.read_text(errors="replace")[-2000:] if DOCKERD_LOG.exists() else ""
    raise EngineError(f"dockerd did not answer within {timeout:.0f} s; last lines of {DOCKERD_LOG}:\n{tail}")


_apt_updated = False


def _apt_install(packages: list[str]) -> None:
    global _apt_updated
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not _apt_updated:
        _run(["apt-get", "update", "-q"], env=env)
        _apt_updated = True
    res = _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], env=env)
    if res.returncode != 0:
        raise EngineError(f"apt-get install {' '.join(packages)} failed:\n{res.stderr[-2000:]}")


def image_exists(name: str) -> bool:
    return local_images.exists(name)


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (containers reach the same one)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for src in sources:
        try:
            text = src.read_text()
        except OSError:
            continue
        for match in re.finditer(r"(?m)^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", text):
            uri = match.group(1)
            if uri.startswith("http") and "security" not in uri:
                return uri.rstrip("/")
    return DEFAULT_MIRROR


def ensure_base_image(name: str, suite: str, say: Say = print) -> None:
    """Pull ``name``, or build it from Debian ``suite`` with debootstrap + docker import."""
    if image_exists(name) or local_images.pull(name):
        return
    if not shutil.which("debootstrap"):
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise EngineError(f"cannot pull {name} and debootstrap is missing: install debootstrap")
        say("installing debootstrap…")
        _apt_install(["debootstrap"])
    mirror = debian_mirror()
    say(f"building base image {name} from Debian {suite} ({mirror}); no registry reachable…")
    with tempfile.TemporaryDirectory(prefix=f"rosetta-{suite}-") as root:
        res = _run(["debootstrap", "--variant=minbase", suite, root, mirror])
        if res.returncode != 0:
            raise EngineError(f"debootstrap {suite} failed:\n{res.stdout[-1500:]}{res.stderr[-1500:]}")
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        assert tar.stdout is not None
        try:
            local_images.import_rootfs(tar.stdout, name)
        except DockerError as exc:
            raise EngineError(f"docker import {name} failed: {exc}") from exc
        finally:
            tar.stdout.close()
            tar.wait()
    say(f"base image {name} ready")


def ensure_base_images(names: list[str] | None = None, say: Say = print) -> None:
    for name in names or list(BASE_IMAGES):
        ensure_base_image(name, BASE_IMAGES[name], say)
