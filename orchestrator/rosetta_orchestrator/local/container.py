"""Run one job container with its output streamed line by line (prefixed by the caller).

Containers come from :mod:`sagemaker_rosetta.containers` naming and labels, so
``containers.cleanup_all()`` (Ctrl-C) finds them, and are removed when the job ends.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from sagemaker_rosetta.containers import LABEL, RUN_ID, container_name
from sagemaker_rosetta.engine import docker

LogFn = Callable[[str], None]

#: containers started by this process and not yet removed (for Ctrl-C)
LIVE: set[str] = set()
#: their `docker run` clients: killed after the removal on Ctrl-C, because a client attached to a
#: container that `docker rm -f` removed can wait for ever, and the step thread reading it with it
CLIENTS: dict[str, subprocess.Popen[str]] = {}
_live_lock = threading.Lock()


def track(name: str) -> None:
    """Remember a container started elsewhere (a serving container) for :func:`remove_all`."""
    _track(name, True)


def _track(name: str, add: bool) -> None:
    with _live_lock:
        (LIVE.add if add else LIVE.discard)(name)


def remove(name: str, timeout: float = 30) -> None:
    try:
        subprocess.run([docker(), "rm", "-f", name], capture_output=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:  # a stuck engine must not hang Ctrl-C; the label finds it later
        pass
    _track(name, False)


_removals: list[threading.Thread] = []


def remove_later(name: str) -> None:
    """Remove a container in the background (a step need not wait for ``docker rm``);
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
        clients = list(CLIENTS.values())
    for proc in clients:
        if proc.poll() is None:
            proc.kill()


def run_job(image: str, args: Sequence[str], *, label: str, log: LogFn,
            env: Mapping[str, str] | None = None, volumes: Mapping[Path, str] | None = None,
            entrypoint: str | None = None, timeout: float | None = None) -> int:
    """``docker run`` to completion, streaming output to ``log``; the exit code.

    On timeout the container gets SIGTERM and 120 s to stop, like StopTrainingJob (T-21).
    """
    name = container_name(label)
    # --rm: the engine removes the container as it exits (no extra CLI call on the happy path)
    cmd = [docker(), "run", "--rm", "--name", name, "--label", f"{LABEL}={RUN_ID}"]
    for k, v in (env or {}).items():
        cmd += ["-e", f"{k}={v}"]
    for host, target in (volumes or {}).items():
        cmd += ["-v", f"{host.resolve()}:{target}"]
    if entrypoint is not None:
        cmd += ["--entrypoint", entrypoint]
    cmd += [image, *args]
    _track(name, True)
    timer: threading.Timer | None = None
    finished = False
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", bufsize=1)
        with _live_lock:
            CLIENTS[name] = proc
        if timeout:
            timer = threading.Timer(timeout, lambda: subprocess.run(
                [docker(), "stop", "-t", "120", name], capture_output=True, check=False))
            timer.daemon = True
            timer.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            log(line.rstrip("\n"))
        code = proc.wait()
        finished = True
        return code
    finally:
        with _live_lock:
            CLIENTS.pop(name, None)
        if timer:
            timer.cancel()
        if finished:
            _track(name, False)
        else:  # interrupted or failed to start: make sure it is gone
            remove(name)


def follow_logs(name: str, log: LogFn) -> threading.Thread:
    """Stream ``docker logs -f`` of a detached container to ``log`` in a daemon thread."""
    def pump() -> None:
        proc = subprocess.Popen([docker(), "logs", "-f", name], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:
            log(line.rstrip("\n"))
        proc.wait()

    thread = threading.Thread(target=pump, daemon=True, name=f"logs-{name}")
    thread.start()
    return thread


def image_present(image: str) -> bool:
    return subprocess.run([docker(), "image", "inspect", image], capture_output=True,
                          check=False).returncode == 0
