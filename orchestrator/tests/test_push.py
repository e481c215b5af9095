"""``push_images`` against a real registry (Debian's docker-registry on 127.0.0.1) and the ECR
authorization-token call against moto. A real ECR push is untested (no AWS account)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest
from orch_helpers import apt_install

from rosetta_orchestrator.push import ECR_HOST, ecr_token, push_images, target
from sagemaker_rosetta.engine import docker

pytestmark = pytest.mark.docker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway registry on 127.0.0.1 (the engine allows plain HTTP to loopback registries)."""
    if not shutil.which("docker-registry"):
        apt_install("docker-registry")
    tmp = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = tmp / "config.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp / 'data'}\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                            stderr=(tmp / "log").open("wb"))
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_target_names() -> None:
    assert target("rosetta/python:latest", "127.0.0.1:5000/team") == "127.0.0.1:5000/team/python:latest"
    assert target("rosetta-example/iris-r", "h/x/") == "h/x/iris-r:latest"
    assert ECR_HOST.match("123456789012.dkr.ecr.eu-west-1.amazonaws.com")
    assert not ECR_HOST.match("127.0.0.1:5000")


def test_push_to_local_registry(echo_image: str, registry: str) -> None:
    said: list[str] = []
    [ref] = push_images([echo_image], f"{registry}/rosetta-test", said.append)
    assert ref == f"{registry}/rosetta-test/echo:latest"
    tags = json.load(urllib.request.urlopen(f"http://{registry}/v2/rosetta-test/echo/tags/list"))
    assert tags == {"name": "rosetta-test/echo", "tags": ["latest"]}
    # round trip: the pushed image pulls back with the same content
    local_id = subprocess.run([docker(), "image", "inspect", "-f", "{{.Id}}", echo_image],
                              capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([docker(), "rmi", ref], capture_output=True, check=True)
    subprocess.run([docker(), "pull", ref], capture_output=True, check=True)
    pulled = subprocess.run([docker(), "image", "inspect", "-f", "{{.Id}}", ref],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert pulled == local_id
    subprocess.run([docker(), "rmi", ref], capture_output=True, check=False)
    assert said == [f"pushed {echo_image} → {ref}"]


def test_ecr_token_from_moto() -> None:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        user, password = ecr_token("123456789012.dkr.ecr.us-east-1.amazonaws.com",
                                   endpoint_url=f"http://127.0.0.1:{port}")
    finally:
        server.stop()
    assert user == "AWS" and password
