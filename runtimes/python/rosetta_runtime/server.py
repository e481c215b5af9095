"""``serve``: load once, warm up, then fork workers on one listening socket (S-04..S-13).

1. Bind ``0.0.0.0:$SAGEMAKER_BIND_TO_PORT`` with TCP_NODELAY (Linux copies it to accepted
   sockets: no 40 ms Nagle/delayed-ACK stall, uvicorn#3149).
2. While the model loads, a separate *process* answers every request ``503 model is loading``
   within milliseconds (S-09) — a process, because a model load may hold the GIL for seconds.
3. Load the model and run one warm-up prediction, then fork ``SAGEMAKER_MODEL_SERVER_WORKERS``
   uvicorn workers that share the loaded model copy-on-write (like gunicorn ``--preload``):
   every worker is ready the moment it exists, so ``/ping`` 200 is never a lie.
   The parent freezes its objects (``gc.freeze``) first, so the workers' collections leave the
   shared pages alone. Load and warm-up run on a short-lived thread (:func:`_off_main_thread`), so
   that a native thread pool they start (OpenMP's) never belongs to the thread that forks.
4. A dead worker is re-forked from the loaded parent. SIGTERM: workers stop accepting,
   finish in-flight requests and exit; the parent exits within 30 s (S-13).

Multi-model mode (``SAGEMAKER_MULTI_MODEL=true``, D6): step 3 imports the user's code only (no
model), empties the registry the workers share, and forks workers that load models on request
(:mod:`rosetta_runtime.multimodel`); ``/ping`` is 200 from then on.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TypeVar

from rosetta_runtime import codecs
from rosetta_runtime.adapter import ModelAdapter, load_adapter, warm_up
from rosetta_runtime.errors import RosettaError, caused_by
from rosetta_runtime.invocations import FAST_WARM_UP_S, batching_status
from rosetta_runtime.listener import Slots, uvicorn_server
from rosetta_runtime.paths import Paths, ServingSettings

if TYPE_CHECKING:
    from rosetta_runtime.routes import Service

log = logging.getLogger("rosetta.server")

T = TypeVar("T")

#: imported before the fork: each worker would otherwise import them itself (~40 ms at start)
WORKER_MODULES = ("uvicorn.main", "uvicorn.loops.uvloop", "uvicorn.protocols.http.httptools_impl",
                  "uvicorn.lifespan.off", "rosetta_runtime.app")
GRACE_SECONDS = 25  # SageMaker kills 30 s after SIGTERM
LOADING_REPLY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 b"Content-Length: 17\r\nConnection: close\r\n\r\nmodel is loading\n")


def bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("0.0.0.0", port))  # S-05: all interfaces, not loopback
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _loading_responder(sock: socket.socket) -> None:
    """Child process: answer 503 to anything until killed."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        conn, _ = sock.accept()
        conn.settimeout(1.0)
        try:
            conn.recv(65536)
            conn.sendall(LOADING_REPLY)
        except OSError:
            pass
        finally:
            conn.close()


def start_loading_responder(sock: socket.socket) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            _loading_responder(sock)
        finally:
            os._exit(0)
    return pid


def _import_worker_modules() -> None:
    """What every worker runs, imported once before the fork (shared copy-on-write, no import per worker)."""
    for name in WORKER_MODULES:
        importlib.import_module(name)
    for name in codecs.ACCELERATORS:
        codecs.accelerator(name)


def _off_main_thread(adapter: ModelAdapter, fn: Callable[[], T]) -> T:
    """``fn()`` on a short-lived thread (on this one for an ``inline`` adapter), its result or its exception.

    Why: GNU OpenMP keeps its thread pool per calling thread. A pool started on the thread that
    forks is inherited by every worker's main thread without its threads (fork copies one thread),
    and the worker's first parallel region there waits for them forever. A pool started on a thread
    that has ended is gone with it, so each worker starts its own. An ``inline`` adapter (an
    embedded R) must stay on the thread that started it.
    """
    if getattr(adapter, "inline", False):
        return fn()
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # re-raised on the calling thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="rosetta-load", daemon=True)  # daemon: SIGTERM may leave it
    thread.start()
    thread.join()  # a signal handler's exception (SIGTERM) still interrupts the wait
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def single_model(adapter: ModelAdapter, settings: ServingSettings, fast: bool) -> Callable[[], Service]:
    """What a worker serves in single-model mode: the model loaded by the parent."""

    def make() -> Service:
        from rosetta_runtime.routes import Service

        service = Service(adapter, settings)
        if fast:
            # The first prediction in a forked child rebuilds what fork dropped (the OpenMP thread pool
            # of this thread, copy-on-write pages) and can take > 50 ms: pay it here, before accepting.
            sample = adapter.sample()
            if sample is not None:
                adapter.predict(sample)
        service.fast_model = fast
        return service

    return make


def multi_model(prototype: ModelAdapter, settings: ServingSettings) -> Callable[[], Service]:
    """What a worker serves in multi-model mode: the models of the shared registry (D6)."""

    def make() -> Service:
        from rosetta_runtime.multimodel import ModelStore
        from rosetta_runtime.routes import Service

        return Service(None, settings, ModelStore(prototype, settings))

    return make


def _worker(sock: socket.socket, settings: ServingSettings, make: Callable[[], Service], slots: Slots | None,
            index: int) -> None:
    import uvicorn

    from rosetta_runtime.app import App

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    service = make()
    config = uvicorn.Config(
        App(service), loop="uvloop", http="httptools", lifespan="off",
        access_log=False, log_level="warning", timeout_keep_alive=75,
        timeout_graceful_shutdown=GRACE_SECONDS, h11_max_incomplete_event_size=64 * 1024,
    )
    uvicorn_server(config, service, slots, index).run(sockets=[sock])


class _Shutdown(Exception):
    pass


#: set by the handler: a SIGTERM inside a C extension's initialisation may come back as another error
#: with the chain lost (pybind11's ``ImportError: initialization failed``)
_shutdown = {"requested": False}


def _raise_shutdown(signum: int, frame: FrameType | None) -> None:
    _shutdown["requested"] = True
    raise _Shutdown()


def _is_shutdown(exc: BaseException) -> bool:
    return _shutdown["requested"] or caused_by(exc, _Shutdown)


def run() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    try:
        settings = ServingSettings.from_env()
    except ValueError as exc:
        print(f"rosetta: cannot serve: {exc}", file=sys.stderr, flush=True)
        return 1
    if settings.multi_model:
        return run_multi_model(settings)
    paths = Paths.from_env()
    sock = bind(settings.port)
    log.info("listening on 0.0.0.0:%d, loading model from %s", settings.port, paths.model_dir)
    responder = start_loading_responder(sock)
    signal.signal(signal.SIGTERM, _raise_shutdown)
    try:
        t0 = time.perf_counter()
        adapter = load_adapter()

        def load_and_warm_up() -> float | None:
            adapter.load(Path(paths.model_dir))
            return warm_up(adapter)

        warm = _off_main_thread(adapter, load_and_warm_up)
        _import_worker_modules()
        if _shutdown["requested"]:  # it landed in an import and a library's fallback swallowed it
            raise _Shutdown()
        log.info("model ready in %.2f s; starting %d workers", time.perf_counter() - t0, settings.workers)
        log.info("%s", batching_status(adapter, settings))
    except _Shutdown:
        os.kill(responder, signal.SIGKILL)
        return 0
    except (RosettaError, Exception) as exc:  # a missing/corrupt model must not serve 503 forever
        os.kill(responder, signal.SIGKILL)
        if _is_shutdown(exc):  # a SIGTERM inside a C extension's import comes back as its error
            return 0
        kind = getattr(exc, "kind", type(exc).__name__)
        print(f"rosetta: cannot serve: {kind}: {exc}", file=sys.stderr, flush=True)
        log.debug("load failure", exc_info=exc)
        return 1
    os.kill(responder, signal.SIGKILL)
    os.waitpid(responder, 0)
    fast = warm is not None and warm < FAST_WARM_UP_S and settings.workers >= 2
    # Move everything loaded so far out of the collector's sight: a worker's collections would
    # otherwise write to every inherited object's GC header, copying the parent's pages one fault
    # at a time (measured: 50-75 ms p99 stalls for the first ~10 s of traffic, +65 MB PSS with 2
    # workers). No gc.collect() first: it costs 70 ms of start-up and leaves holes that the workers
    # would fill, copying those pages after all (the order the gc module's documentation gives).
    gc.freeze()
    return _supervise(sock, settings, single_model(adapter, settings, fast))


def run_multi_model(settings: ServingSettings) -> int:
    """Multi-model mode: user code imported once, no model; workers load models on request (D6)."""
    from rosetta_runtime.multimodel import Registry

    sock = bind(settings.port)
    log.info("listening on 0.0.0.0:%d in multi-model mode (memory budget %.0f MiB, registry %s)", settings.port,
             settings.mme_memory_bytes / 2**20, settings.mme_state_dir)
    responder = start_loading_responder(sock)
    signal.signal(signal.SIGTERM, _raise_shutdown)
    try:
        prototype = load_adapter()
        prepare = getattr(prototype, "prepare", None)
        if callable(prepare):
            _off_main_thread(prototype, prepare)
        Registry(settings.mme_state_dir).reset()  # a restarted server starts with no model
        log.info("%s", batching_status(prototype, settings))
        _import_worker_modules()
        if _shutdown["requested"]:
            raise _Shutdown()
    except _Shutdown:
        os.kill(responder, signal.SIGKILL)
        return 0
    except Exception as exc:
        os.kill(responder, signal.SIGKILL)
        if _is_shutdown(exc):
            return 0
        kind = getattr(exc, "kind", type(exc).__name__)
        print(f"rosetta: cannot serve: {kind}: {exc}", file=sys.stderr, flush=True)
        return 1
    os.kill(responder, signal.SIGKILL)
    os.waitpid(responder, 0)
    gc.freeze()
    return _supervise(sock, settings, multi_model(prototype, settings))


def _fork_worker(sock: socket.socket, settings: ServingSettings, make: Callable[[], Service], slots: Slots | None,
                 index: int) -> int:
    if slots is not None:
        slots.set(index, 0)  # a new worker in a dead one's slot starts with no connection
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            _worker(sock, settings, make, slots, index)
        except BaseException:
            logging.getLogger("rosetta.worker").exception("worker crashed")
            code = 1
        finally:
            os._exit(code)
    return pid


def _supervise(sock: socket.socket, settings: ServingSettings, make: Callable[[], Service]) -> int:
    # the workers' open-connection counts, so that a burst of connections spreads over them (listener.py)
    slots = Slots(settings.workers) if settings.workers > 1 else None
    workers = {_fork_worker(sock, settings, make, slots, i): i for i in range(settings.workers)}
    signal.signal(signal.SIGINT, _raise_shutdown)
    recent: list[float] = []
    try:
        while True:
            pid, status = os.wait()
            if pid not in workers:
                continue
            index = workers.pop(pid)
            log.warning("worker %d exited (status %d); starting a new one", pid, status)
            now = time.monotonic()
            recent = [t for t in recent if now - t < 10] + [now]
            if len(recent) > 5 * settings.workers:  # a crash loop: back off instead of spinning
                time.sleep(1)
            workers[_fork_worker(sock, settings, make, slots, index)] = index
    except _Shutdown:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        log.info("SIGTERM: draining %d workers", len(workers))
        for pid in workers:
            os.kill(pid, signal.SIGTERM)
        sock.close()
        deadline = time.monotonic() + GRACE_SECONDS + 2
        while workers and time.monotonic() < deadline:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid:
                workers.pop(pid, None)
            else:
                select.select([], [], [], 0.05)
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        return 0
