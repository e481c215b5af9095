"""The Docker Engine API client every Rosetta module uses (the Docker SDK for Python).

One client per thread: the SDK's client wraps a ``requests`` session, which is not
documented as thread-safe, and the conformance suite, the local pipeline runner and the
tests call the engine from many threads at once (a blocking ``wait`` or a followed log
stream in one thread must not hold up the others). The API version is negotiated once
per process and reused, so a new thread's client costs no round trip.

Errors leave this layer as :class:`DockerError` (or :class:`NotFound`), so callers never
import ``docker`` themselves; a missing engine is :class:`~sagemaker_rosetta.engine.EngineError`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import docker
import docker.errors
import requests

#: seconds an ordinary API call may take (waits and stops pass their own)
API_TIMEOUT = 120


class DockerError(RuntimeError):
    """The engine refused or failed a request; the message is the engine's explanation."""


class NotFound(DockerError, LookupError):
    """No such container, image or network."""


class EngineUnreachable(DockerError):
    """No engine answers on the configured socket (``DOCKER_HOST`` or the default)."""


_local = threading.local()
_version_lock = threading.Lock()
_version: str | None = None


def client() -> docker.DockerClient:
    """This thread's client (created on first use; a forked child makes its own)."""
    pid = os.getpid()
    cached = getattr(_local, "client", None)
    if cached is not None and getattr(_local, "pid", None) == pid:
        return cached
    made = _new_client()
    _local.client, _local.pid = made, pid
    return made


def api() -> docker.APIClient:
    """This thread's low-level client (for calls the high-level models do not offer)."""
    return client().api


def _new_client() -> docker.DockerClient:
    global _version
    with _version_lock:
        version = _version
    try:
        made = docker.DockerClient.from_env(version=version or "auto", timeout=API_TIMEOUT)
    except docker.errors.DockerException as exc:
        raise EngineUnreachable(f"no Docker engine answers ({exc}): start Docker or run `rosetta setup`") from exc
    if version is None:
        with _version_lock:
            _version = made.api.api_version
    return made


def explain(exc: BaseException) -> str:
    """The engine's one-line explanation of a failed request."""
    if isinstance(exc, docker.errors.APIError):
        text = exc.explanation if isinstance(exc.explanation, str) else str(exc.explanation or exc)
        return text.strip() or str(exc)
    return str(exc).strip()


@contextmanager
def translated(what: str = "") -> Iterator[None]:
    """Re-raise the SDK's and the transport's errors as :class:`DockerError` / :class:`NotFound`."""
    prefix = f"{what}: " if what else ""
    try:
        yield
    except (docker.errors.NotFound, docker.errors.ImageNotFound) as exc:
        raise NotFound(prefix + explain(exc)) from exc
    except docker.errors.DockerException as exc:
        raise DockerError(prefix + explain(exc)) from exc
    except requests.exceptions.ConnectionError as exc:
        raise EngineUnreachable(f"{prefix}lost the Docker engine: {exc}") from exc


def is_timeout(exc: BaseException) -> bool:
    """Whether an exception from a blocking call (wait, stop) is its client-side timeout."""
    if isinstance(exc, requests.exceptions.Timeout):
        return True
    # a read timeout on a long-poll can surface as a ConnectionError wrapping ReadTimeoutError
    return isinstance(exc, requests.exceptions.ConnectionError) and "timed out" in str(exc).lower()


def ping() -> bool:
    """Whether an engine answers (no exception when none does)."""
    try:
        return bool(client().ping())
    except (DockerError, docker.errors.DockerException, requests.exceptions.RequestException):
        return False
