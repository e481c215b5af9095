"""Tag and push images to a registry; ECR hosts get a login from boto3's authorization token."""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Callable

from sagemaker_rosetta.engine import docker

ECR_HOST = re.compile(r"^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


class PushError(RuntimeError):
    pass


def target(tag: str, repository: str) -> str:
    """Where a local ``name:tag`` goes: ``REPOSITORY/<last part of name>:tag``.

    ``rosetta/python:latest`` + ``123.dkr.ecr.us-east-1.amazonaws.com/rosetta`` →
    ``123.dkr.ecr.us-east-1.amazonaws.com/rosetta/python:latest``.
    """
    name, _, version = tag.rpartition(":") if ":" in tag.rsplit("/", 1)[-1] else (tag, "", "latest")
    return f"{repository.rstrip('/')}/{name.rsplit('/', 1)[-1]}:{version or 'latest'}"


def ecr_login(host: str, say: Callable[[str], None], *, endpoint_url: str | None = None) -> None:
    """``docker login`` to an ECR host with its GetAuthorizationToken answer."""
    user, password = ecr_token(host, endpoint_url=endpoint_url)
    res = subprocess.run([docker(), "login", "--username", user, "--password-stdin", host],
                         input=password, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise PushError(f"docker login {host} failed: {res.stderr.strip()}")
    say(f"logged in to {host} (ECR token)")


def ecr_token(host: str, *, endpoint_url: str | None = None) -> tuple[str, str]:
    """(user, password) from ECR's GetAuthorizationToken, without logging in."""
    import boto3

    m = ECR_HOST.match(host)
    if not m:
        raise PushError(f"{host} is not an ECR registry host")
    client = boto3.client("ecr", region_name=m.group(2), endpoint_url=endpoint_url)
    auth = client.get_authorization_token(registryIds=[m.group(1)])["authorizationData"][0]
    user, _, password = base64.b64decode(auth["authorizationToken"]).decode().partition(":")
    return user, password


def push_images(tags: list[str], repository: str, say: Callable[[str], None]) -> list[str]:
    """Tag each local image under ``repository`` and push it; the pushed references."""
    host = repository.split("/", 1)[0]
    if ECR_HOST.match(host):
        ecr_login(host, say)
    pushed = []
    for tag in tags:
        ref = target(tag, repository)
        for cmd in (["tag", tag, ref], ["push", ref]):
            res = subprocess.run([docker(), *cmd], capture_output=True, text=True, check=False)
            if res.returncode != 0:
                raise PushError(f"docker {' '.join(cmd)} failed: {(res.stderr or res.stdout).strip()[-800:]}")
        say(f"pushed {tag} → {ref}")
        pushed.append(ref)
    return pushed
