"""Run one job container with its output streamed line by line (prefixed by the caller).

Containers come from :mod:`sagemaker_rosetta.containers` (naming, labels, the engine API), so
``containers.cleanup_all()`` (Ctrl-C) finds them; this module remembers which ones the run has
live, so that Ctrl-C removes them at once and ends the log streams the step threads are reading.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from sagemaker_rosetta import local_images
from sagemaker_rosetta.containers import Container, DockerError, container_name
from sagemaker_rosetta.containers import follow_logs as _follow_logs

LogFn = Callable[[str], None]

#: containers started by this process and not yet removed (for Ctrl-C)
LIVE: set[str] = set()
#: the jobs whose output a step thread is reading: their streams are closed after the removal on
#: Ctrl-C, so that no step thread waits on a stream of a container that is gone
CLIENTS: dict[str, Container] = {}
_live_lock = threading.Lock()


def track(name: str) -> None:
    """Remember a container started elsewhere (a serving container) for :func:`remove_all`."""
    _track(name, True)


def _track(name: str, add: bool) -> None:
    with _live_lock:
        (LIVE.add if add else LIVE.discard)(name)


def remove(name: str, timeout: float = 30) -> None:
    """Force-remove; a stuck engine must not hang Ctrl-C (after ``timeout`` s the label finds it later)."""
    worker = threading.Thread(target=_remove_quietly, args=(name,), daemon=True)
    worker.start()
    worker.join(timeout)
    _track(name, False)


def _remove_quietly(name: str) -> None:
    try:
        Container("", name=name).remove()
    except DockerError:
        pass


_removals: list[threading.Thread] = []


def remove_later(name: str) -> None:
    """Remove a container in the background (a step need not wait for the removal);
    :func:`wait_removals` joins them before a run reports its end."""
    thread = threading.Thread(target=remove, args=(name,), daemon=True)
    thread.start()
    with _live_lock:
        _removals.append(thread)


def wait_removals(timeout: float = 60) -> None:
    with _live_lock:
        threads = list(_removals)
        _removals.clear()
    for thread in threads:
        thread.join(timeout)


def remove_all() -> None:
    """Remove every container this process still has (called on Ctrl-C and on failures)."""
    with _live_lock:
        names = list(LIVE)
    removals = [threading.Thread(target=remove, args=(name,), daemon=True) for name in names]
    for thread in removals:
        thread.start()
    for thread in removals:
        thread.join(40)
    with _live_lock:
        jobs = list(CLIENTS.values())
    for job in jobs:
        job.close_streams()


def run_job(image: str, args: Sequence[str], *, label: str, log: LogFn,
            env: Mapping[str, str] | None = None, volumes: Mapping[Path, str] | None = None,
            entrypoint: str | None = None, timeout: float | None = None) -> int:
    """Run the container to completion, streaming its output to ``log``; the exit code.

    On timeout the container gets SIGTERM and 120 s to stop, like StopTrainingJob (T-21).
    A container that cannot start logs the engine's reason and gives ``docker run``'s 125.
    """
    job = Container(image, args, env=dict(env or {}), volumes=dict(volumes or {}), entrypoint=entrypoint,
                    name=container_name(label))
    _track(job.name, True)
    timer: threading.Timer | None = None
    try:
        try:
            job.start()
        except DockerError as exc:
            log(f"docker: {exc}")
            return 125
        with _live_lock:
            CLIENTS[job.name] = job
        if timeout:
            timer = threading.Timer(timeout, _stop_quietly, args=(job,))
            timer.daemon = True
            timer.start()
        for line in job.lines():
            log(line)
        code = job.wait_exit(None)
        # None: removed under us (Ctrl-C); 137 is what `docker run` reported for a killed container
        return 137 if code is None else code
    finally:
        with _live_lock:
            CLIENTS.pop(job.name, None)
        if timer:
            timer.cancel()
        remove_later(job.name)


def _stop_quietly(job: Container) -> None:
    try:
        job.stop(120)
    except DockerError:
        pass


def follow_logs(name: str, log: LogFn) -> threading.Thread:
    """Stream the output of a detached container to ``log`` in a daemon thread."""
    return _follow_logs(name, log)


def image_present(image: str) -> bool:
    return local_images.exists(image)
