"""Tag and push images to a registry; ECR hosts get credentials from boto3's authorization token.

The credentials go with the push request only (nothing is written to ``~/.docker/config.json``).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

from sagemaker_rosetta import local_images
from sagemaker_rosetta.dockerapi import DockerError

ECR_HOST = re.compile(r"^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


class PushError(RuntimeError):
    """A push that cannot be done; the message says why and what to do."""


def target(tag: str, repository: str) -> str:
    """Where a local ``name:tag`` goes: ``REPOSITORY/<last part of name>:tag``.

    ``rosetta/python:latest`` + ``123.dkr.ecr.us-east-1.amazonaws.com/rosetta`` →
    ``123.dkr.ecr.us-east-1.amazonaws.com/rosetta/python:latest``.
    """
    name, _, version = tag.rpartition(":") if ":" in tag.rsplit("/", 1)[-1] else (tag, "", "latest")
    return f"{repository.rstrip('/')}/{name.rsplit('/', 1)[-1]}:{version or 'latest'}"


def ecr_token(host: str, *, endpoint_url: str | None = None) -> tuple[str, str]:
    """(user, password) from ECR's GetAuthorizationToken."""
    import boto3
    import botocore.exceptions

    m = ECR_HOST.match(host)
    if not m:
        raise PushError(f"{host} is not an ECR registry host")
    client = boto3.client("ecr", region_name=m.group(2), endpoint_url=endpoint_url)
    try:
        auth = client.get_authorization_token(registryIds=[m.group(1)])["authorizationData"][0]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise PushError(f"cannot get an ECR login for {host}: {exc} (check your AWS credentials and region)") from exc
    user, _, password = base64.b64decode(auth["authorizationToken"]).decode().partition(":")
    return user, password


def registry_auth(host: str, say: Callable[[str], None], *, endpoint_url: str | None = None) -> dict[str, str] | None:
    """Credentials for pushing to ``host``: an ECR token for ECR hosts, else none (the engine's own)."""
    if not ECR_HOST.match(host):
        return None
    user, password = ecr_token(host, endpoint_url=endpoint_url)
    say(f"logged in to {host} (ECR token)")
    return {"username": user, "password": password, "serveraddress": host}


def push_images(tags: list[str], repository: str, say: Callable[[str], None]) -> list[str]:
    """Tag each local image under ``repository`` and push it; the pushed references."""
    auth = registry_auth(repository.split("/", 1)[0], say)
    pushed = []
    for tag in tags:
        ref = target(tag, repository)
        try:
            local_images.tag(tag, ref)
            local_images.push(ref, auth=auth)
        except DockerError as exc:
            raise PushError(f"{exc}"[-800:]) from exc
        say(f"pushed {tag} → {ref}")
        pushed.append(ref)
    return pushed
