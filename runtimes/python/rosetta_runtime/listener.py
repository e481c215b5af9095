"""How the workers share the listening socket: connections spread by load, not by who wakes first.

Every worker watches the one listening socket. An event loop left to itself (uvloop's, asyncio's)
accepts until the backlog is empty, so the first worker to wake takes a whole burst: the 8
keep-alive connections of a load test, or both connections of a MaxConcurrentTransforms=2
transform job, while the other worker idles for the rest of the run. So each worker accepts one
connection per wakeup, and a worker holding more open connections than the least loaded other
worker first leaves a new connection to it for ``DEFER_S``, then takes it itself if nobody did
(a busy or dead worker never strands a client). The counts live in memory the supervisor maps
before forking (:class:`Slots`); each worker publishes its own when it accepts and every 0.1 s.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import os
import select
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rosetta_runtime.routes import Service

log = logging.getLogger("rosetta.listener")

#: how long a worker ahead in connections leaves a new one to the others
DEFER_S = 0.005


class Slots:
    """The open-connection count of each worker slot, in an anonymous shared mapping (fork-inherited)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._map = mmap.mmap(-1, 8 * n)

    def set(self, index: int, value: int) -> None:
        struct.pack_into("<q", self._map, 8 * index, value)

    def get(self, index: int) -> int:
        value: int = struct.unpack_from("<q", self._map, 8 * index)[0]
        return value

    def least_other(self, index: int) -> int | None:
        others = [self.get(j) for j in range(self.n) if j != index]
        return min(others) if others else None


class Listener:
    """One worker's accepting side (see the module's text); closed by uvicorn's shutdown."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, factory: Callable[[], asyncio.Protocol],
                 connections: set[Any], slots: Slots | None, index: int) -> None:
        self.loop, self.sock, self.factory = loop, sock, factory
        self.connections, self.slots, self.index = connections, slots, index
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self._ready)

    def open_connections(self) -> int:
        """Connections of this worker, including those accepted but not yet handed to a protocol."""
        return len(self.connections) + len(self._tasks)

    def publish(self) -> None:
        if self.slots is not None:
            self.slots.set(self.index, self.open_connections())

    def _ready(self) -> None:
        if self.slots is not None:
            mine = self.open_connections()
            self.slots.set(self.index, mine)
            least = self.slots.least_other(self.index)
            if least is not None and mine > least:  # leave it to a less loaded worker for a moment
                self.loop.remove_reader(self.sock.fileno())
                self.loop.call_later(DEFER_S, self._after_deferring)
                return
        self._accept()

    def _after_deferring(self) -> None:
        if self._closed:
            return
        if select.select([self.sock], [], [], 0)[0]:  # nobody took it: this worker does
            self._accept()
        self.loop.add_reader(self.sock.fileno(), self._ready)

    def _accept(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError):  # another worker took it
            return
        except OSError as exc:  # e.g. out of file descriptors: do not spin on a readable socket
            log.warning("accept failed: %s; retrying in 0.1 s", exc)
            self.loop.remove_reader(self.sock.fileno())
            self.loop.call_later(0.1, self._after_deferring)
            return
        conn.setblocking(False)
        task = self.loop.create_task(self.loop.connect_accepted_socket(self.factory, conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.publish()

    def close(self) -> None:
        self._closed = True
        self.loop.remove_reader(self.sock.fileno())

    async def wait_closed(self) -> None:
        return None


def uvicorn_server(config: Any, service: Service, slots: Slots | None, index: int) -> Any:
    """uvicorn's server accepting through a :class:`Listener` (its protocol, shutdown, drain and timeouts
    kept). Its last words say how many predict calls batching saved (uvicorn re-raises SIGTERM after
    its shutdown, so nothing runs after ``run``)."""
    import uvicorn

    class WorkerServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await self.lifespan.startup()
            config = self.config

            def create_protocol() -> asyncio.Protocol:
                return config.http_protocol_class(  # type: ignore[call-arg]
                    config=config, server_state=self.server_state, app_state=self.lifespan.state)

            loop = asyncio.get_running_loop()
            self.listeners = [Listener(loop, sock, create_protocol, self.server_state.connections, slots, index)
                              for sock in sockets or []]
            self.servers = self.listeners  # type: ignore[assignment]  # closed and awaited by uvicorn's shutdown
            self.started = True

        async def on_tick(self, counter: int) -> bool:
            for listener in self.listeners:  # closed connections lower the count
                listener.publish()
            return await super().on_tick(counter)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            await super().shutdown(sockets)
            requests, calls = service.batch_counts()
            if calls:
                log.info("worker %d: %d requests in %d predict calls (batching, %.2f per call)", os.getpid(),
                         requests, calls, requests / calls)

    return WorkerServer(config)
