"""What each runtime image is, before it runs anything (C-01..C-04, M-02), and what it must not carry."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from rosetta_testkit.runtimes import RUNTIMES, Runtime
from sagemaker_rosetta import images, local_images
from sagemaker_rosetta.containers import run

pytestmark = pytest.mark.docker

BIND_LABEL = "com.amazonaws.sagemaker.capabilities.accept-bind-to-port"


def test_entrypoint_label_and_commands(rt: Runtime) -> None:
    cfg = local_images.config(rt.image)
    assert cfg["Entrypoint"] == ["rosetta-entrypoint"]  # exec form, no sh -c (C-02), no tini (C-03)
    assert local_images.labels(rt.image).get(BIND_LABEL) == "true"  # M-02
    res = run(rt.image, ["-c", "command -v train; command -v serve"], entrypoint="sh")
    assert res.stdout.split() == ["/usr/local/bin/train", "/usr/local/bin/serve"], res.stderr  # C-01
    assert not local_images.list_files(rt.image, "/opt/ml")  # C-04: SageMaker's mounts would hide it


def test_unknown_command_exits_2(rt: Runtime) -> None:
    res = run(rt.image, ["bogus"])
    assert res.returncode == 2, res.stderr
    assert "'bogus'" in res.stderr and "train" in res.stderr and "serve" in res.stderr  # says what it wants


def _custom_ca_lines() -> list[str]:
    """A distinctive base64 line of each CA in the host bundle that is not one of Debian's (Mozilla) CAs."""
    bundle = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
    if not bundle.is_file():
        return []
    mozilla = "".join(p.read_text() for p in Path("/usr/share/ca-certificates/mozilla").glob("*.crt"))
    lines = []
    for pem in re.findall(r"-----BEGIN CERTIFICATE-----\n(.*?)-----END", bundle.read_text(), re.S):
        body = pem.splitlines()
        if len(body) > 4 and body[2] not in mozilla:
            lines.append(body[len(body) // 2])
    return lines


def _built_with_the_ca(rt: Runtime) -> bool:
    """Whether the runtime's Dockerfile mounts the build secret ``ca`` (the others never see the CA)."""
    return "id=ca" in (images.project_root() / images.IMAGES[rt.runtime_image].dockerfile).read_text()


CA_RUNTIMES = [rt for rt in RUNTIMES if _built_with_the_ca(rt)]


def test_the_ca_check_covers_the_pip_images() -> None:
    assert {rt.key for rt in CA_RUNTIMES} >= {"python", "r-rpy2"}, CA_RUNTIMES


@pytest.mark.parametrize("rt", CA_RUNTIMES, indirect=True, ids=str)
def test_build_ca_not_in_image(rt: Runtime) -> None:
    """The CA that intercepts this machine's TLS reaches the build as a secret only, never a layer."""
    needles = _custom_ca_lines()
    assert needles, "expected the host bundle to hold the build CA (this machine intercepts TLS)"
    script = "grep -rlF -e " + " -e ".join(f"'{n}'" for n in needles) + \
        " / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev 2>/dev/null; true"
    res = run(rt.image, ["-c", script], entrypoint="sh")
    assert res.stdout.strip() == "", f"build CA found in image files: {res.stdout}"
