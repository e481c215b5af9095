"""What the local engine holds: image metadata, files, pulls, imports, tags and pushes (Docker SDK).

Builds are not here: they need BuildKit with a build secret, which the SDK cannot drive
(:func:`sagemaker_rosetta.images.docker_build` uses the CLI).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Mapping
from typing import IO, Any

import docker.errors

from sagemaker_rosetta import dockerapi
from sagemaker_rosetta.dockerapi import DockerError, NotFound


def inspect(image: str) -> dict[str, Any]:
    """``docker image inspect IMAGE``; raises :class:`NotFound`."""
    with dockerapi.translated(f"image {image}"):
        return dict(dockerapi.api().inspect_image(image))


def exists(image: str) -> bool:
    try:
        inspect(image)
    except NotFound:
        return False
    return True


def config(image: str) -> dict[str, Any]:
    """The image's ``Config`` (Entrypoint, Cmd, Env, Labels, …); raises :class:`NotFound`."""
    return dict(inspect(image).get("Config") or {})


def labels(image: str) -> dict[str, str]:
    return dict(config(image).get("Labels") or {})


def architecture(image: str) -> str:
    """``amd64``, ``arm64``, …"""
    return str(inspect(image).get("Architecture") or "")


def image_id(image: str) -> str:
    return str(inspect(image)["Id"])


def engine_platform() -> tuple[str, str]:
    """``(os, architecture)`` of the engine's host in image terms, e.g. ``("linux", "amd64")``:
    what an image must be built for to run there without emulation."""
    with dockerapi.translated("docker version"):
        info = dockerapi.api().version()
    return str(info.get("Os") or ""), str(info.get("Arch") or "")


def relabel_platform(image: str, ref: str, *, architecture: str, os: str = "linux") -> None:
    """Tag as ``ref`` a copy of ``image`` whose config claims another platform (same layers, nothing
    rebuilt or pulled): an image as a build on another machine would label it. The engine runs it
    like any other (the files are the original's); used to prove architecture checks can fail.

    ``docker load`` of a manifest and an edited config only: the layers are already in the store,
    so the engine reuses them by their content digests and the tar holds no layer data.
    """
    info = inspect(image)
    diff_ids = list((info.get("RootFS") or {}).get("Layers") or [])
    config = json.dumps({"architecture": architecture, "os": os, "created": info.get("Created"),
                         "config": info.get("Config") or {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": name, "RepoTags": [ref],
                            "Layers": [f"{i}/layer.tar" for i in range(len(diff_ids))]}]).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for member, data in ((name, config), ("manifest.json", manifest)):
            entry = tarfile.TarInfo(member)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    with dockerapi.translated(f"docker load {ref}"):
        for event in dockerapi.api().load_image(buf.getvalue()):
            if isinstance(event, dict) and "error" in event:
                raise DockerError(f"docker load {ref}: {event['error']}")


def list_files(image: str, path: str, *, labels: Mapping[str, str] | None = None) -> list[str] | None:
    """Files (not directories) under ``path`` in the image, without running it (``docker cp``
    from a created, never started container); ``None`` when ``path`` does not exist."""
    from sagemaker_rosetta.containers import LABEL, RUN_ID, container_name

    client = dockerapi.client()
    with dockerapi.translated(f"docker create {image}"):
        created = client.containers.create(image, ["serve"], name=container_name("files"),
                                           labels={LABEL: RUN_ID, **(labels or {})})
    try:
        try:
            chunks, _ = created.get_archive(path)
        except docker.errors.NotFound:
            return None
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            return [m.name for m in tar.getmembers() if not m.isdir()]
    finally:
        try:
            created.remove(force=True)
        except docker.errors.APIError:
            pass


def pull(ref: str) -> bool:
    """Pull ``ref`` from its registry; False when that fails (no registry answers on offline machines)."""
    repo, _, version = _split(ref)
    try:
        dockerapi.api().pull(repo, tag=version or "latest")
    except (docker.errors.APIError, OSError):  # OSError: requests' connection errors and timeouts
        return False
    return exists(ref)


def import_rootfs(tar_stream: IO[bytes], ref: str) -> None:
    """``docker import - REF``: a root filesystem tar read from ``tar_stream`` becomes an image."""
    repo, _, tag = _split(ref)
    with dockerapi.translated(f"docker import {ref}"):
        dockerapi.api().import_image(src=tar_stream, repository=repo, tag=tag or "latest", stream_src=True)


def tag(image: str, ref: str) -> None:
    repo, _, version = _split(ref)
    with dockerapi.translated(f"docker tag {image} {ref}"):
        dockerapi.api().tag(image, repo, version or "latest")


def remove(ref: str) -> None:
    """``docker rmi REF`` (untag; the layers stay while another tag uses them); quiet when absent."""
    try:
        dockerapi.api().remove_image(ref)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        raise DockerError(f"docker rmi {ref}: {dockerapi.explain(exc)}") from exc


def push(ref: str, *, auth: Mapping[str, str] | None = None, progress: Callable[[str], None] | None = None) -> None:
    """``docker push REF``; the engine reports failures inside the progress stream: raised as :class:`DockerError`."""
    repo, _, version = _split(ref)
    with dockerapi.translated(f"docker push {ref}"):
        stream = dockerapi.api().push(repo, tag=version or "latest", stream=True, decode=True,
                                      auth_config=dict(auth) if auth else None)
        for event in stream:
            if "error" in event:
                detail = event.get("errorDetail", {}).get("message") or event["error"]
                raise DockerError(f"docker push {ref}: {detail}")
            if progress and event.get("status") and "id" not in event:
                progress(str(event["status"]))


def _split(ref: str) -> tuple[str, str, str]:
    """``host:5000/name:tag`` → (``host:5000/name``, ``:``, ``tag``); no tag → ``""``."""
    last = ref.rsplit("/", 1)[-1]
    if ":" in last and "@" not in last:
        repo, sep, version = ref.rpartition(":")
        return repo, sep, version
    return ref, "", ""
