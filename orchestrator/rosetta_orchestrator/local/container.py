"""Run one job container with its output streamed line by line (prefixed by the caller).

Containers come from :mod:`sagemaker_rosetta.containers` (naming, labels, the engine API), so
``containers.cleanup_all()`` (Ctrl-C) finds them; this module remembers which ones the run has
live, so that Ctrl-C removes them at once and ends the log streams the step threads are reading.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from sagemaker_rosetta import local_images
from sagemaker_rosetta.containers import Container, DockerError, container_name
from sagemaker_rosetta.containers import follow_logs as _follow_logs
from sagemaker_rosetta.networks import Network, network_name

LogFn = Callable[[str], None]

#: containers started by this process and not yet removed (for Ctrl-C)
LIVE: set[str] = set()
#: per-job networks of multi-host jobs not yet removed (for Ctrl-C, after their containers)
NETWORKS: set[str] = set()
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
        nets = list(NETWORKS)
    for job in jobs:
        job.close_streams()
    for net in nets:
        _remove_network(net)


def run_job(image: str, args: Sequence[str], *, label: str, log: LogFn,
            env: Mapping[str, str] | None = None, volumes: Mapping[Path, str] | None = None,
            entrypoint: str | None = None, timeout: float | None = None, hostname: str | None = None) -> int:
    """Run the container to completion, streaming its output to ``log``; the exit code.

    On timeout the container gets SIGTERM and 120 s to stop, like StopTrainingJob (T-21).
    A container that cannot start logs the engine's reason and gives ``docker run``'s 125.
    """
    job = Container(image, args, env=dict(env or {}), volumes=dict(volumes or {}), entrypoint=entrypoint,
                    name=container_name(label), hostname=hostname)
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


def _stop_quietly(job: Container, grace: float = 120) -> None:
    try:
        job.stop(grace)
    except DockerError:
        pass


def follow_logs(name: str, log: LogFn) -> threading.Thread:
    """Stream the output of a detached container to ``log`` in a daemon thread."""
    return _follow_logs(name, log)


def image_present(image: str) -> bool:
    return local_images.exists(image)


HostLog = Callable[[str, str], None]


def run_hosts(image: str, args: Sequence[str], hosts: Sequence[str], *, label: str, log: HostLog,
              env: Mapping[str, str] | None = None, volumes: Mapping[str, Mapping[Path, str]],
              entrypoint: str | None = None, timeout: float | None = None) -> dict[str, int]:
    """One container per host on a per-job network, each reachable from the others by its host name
    (``algo-1`` …); their output goes to ``log(host, line)``. The first host to exit non-zero stops
    the others (SIGTERM, SIGKILL after 10 s); ``timeout`` stops them all (T-21).

    Returns each host's exit code in the order the hosts ended (125 for one that could not start).
    """
    net = Network(network_name(label))
    with _live_lock:
        NETWORKS.add(net.name)
    jobs: dict[str, Container] = {}
    ended: queue.Queue[tuple[str, int]] = queue.Queue()
    codes: dict[str, int] = {}
    timer: threading.Timer | None = None
    try:
        try:
            net.create()
        except DockerError as exc:
            log(hosts[0], f"docker: {exc}")
            return {hosts[0]: 125}
        for host in hosts:
            job = Container(image, args, env=dict(env or {}), volumes=dict(volumes[host]), entrypoint=entrypoint,
                            name=container_name(f"{label}-{host}"), network=net, hostname=host, aliases=[host])
            _track(job.name, True)
            jobs[host] = job
            try:
                job.start()
            except DockerError as exc:
                log(host, f"docker: {exc}")
                codes[host] = 125
                break
            with _live_lock:
                CLIENTS[job.name] = job
        if codes:  # one could not start: the job never ran
            for job in jobs.values():
                _stop_quietly(job, 0)
            return codes
        for host, job in jobs.items():
            threading.Thread(target=_follow_exit, args=(host, job, log, ended), daemon=True,
                             name=f"host-{job.name}").start()
        if timeout:
            timer = threading.Timer(timeout, _stop_all, args=(list(jobs.values()), 120))
            timer.daemon = True
            timer.start()
        while len(codes) < len(jobs):
            host, code = ended.get()
            codes[host] = code
            if code != 0 and len(codes) == 1:
                log(host, f"[rosetta] {host} exited with {code}: stopping the other hosts")
                threading.Thread(target=_stop_all, args=([j for h, j in jobs.items() if h not in codes], 10),
                                 daemon=True).start()
        return codes
    finally:
        if timer:
            timer.cancel()
        with _live_lock:
            for job in jobs.values():
                CLIENTS.pop(job.name, None)
        thread = threading.Thread(target=_remove_group, args=([j.name for j in jobs.values()], net.name),
                                  daemon=True)
        thread.start()
        with _live_lock:
            _removals.append(thread)


def _follow_exit(host: str, job: Container, log: HostLog, ended: queue.Queue[tuple[str, int]]) -> None:
    try:
        for line in job.lines():
            log(host, line)
        code = job.wait_exit(None)
    except DockerError:
        code = None
    ended.put((host, 137 if code is None else code))


def _stop_all(jobs: list[Container], grace: float) -> None:
    stoppers = [threading.Thread(target=_stop_quietly, args=(job, grace), daemon=True) for job in jobs]
    for t in stoppers:
        t.start()
    for t in stoppers:
        t.join(grace + 60)


def _remove_group(names: list[str], net: str) -> None:
    removals = [threading.Thread(target=remove, args=(n,), daemon=True) for n in names]
    for t in removals:
        t.start()
    for t in removals:
        t.join(60)
    _remove_network(net)


def _remove_network(name: str) -> None:
    try:
        Network(name).remove()
    except DockerError:
        pass
    with _live_lock:
        NETWORKS.discard(name)
