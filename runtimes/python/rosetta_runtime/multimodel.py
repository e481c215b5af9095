"""Multi-model mode (D6): models loaded, listed, described, unloaded and invoked by name.

SageMaker's "custom containers contract for multi-model endpoints"
(https://docs.aws.amazon.com/sagemaker/latest/dg/mms-container-apis.html); the HTTP side is in
:mod:`rosetta_runtime.routes`, invocations in :mod:`rosetta_runtime.invocations`.

The worker processes behave as one server through a registry in a folder they share
(``ROSETTA_MME_STATE_DIR``):

- ``registry.json``: the loaded models (name, url, memory cost, load id), the loads in progress
  (name, worker pid, estimated cost) and a generation number, rewritten atomically (temporary file
  + rename) under an exclusive ``flock`` of ``lock``;
- ``generation``: the generation as 8 bytes every worker maps in memory, bumped after each change
  of the models, so a request checks for news with one memory read instead of a file read.

The worker that receives ``POST /models`` decides 409 and the memory budget under the lock (so
across workers), reserves the name, loads outside the lock (in a thread: ``/ping`` and the other
models keep answering), then registers the model. Another worker asked for a registered model it
does not hold loads it first, once however many requests wait; a worker that sees a new generation
drops what is no longer registered. Nothing is served before its load and warm-up are complete.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import contextlib
import copy
import fcntl
import json
import logging
import mmap
import os
import re
import stat
import struct
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from rosetta_runtime.adapter import ModelAdapter, warm_up
from rosetta_runtime.errors import BadRequest, HTTPError
from rosetta_runtime.invocations import FAST_WARM_UP_S, Predictor, first_line
from rosetta_runtime.paths import ServingSettings

log = logging.getLogger("rosetta.multimodel")

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
BAD_BODY = 'bad request: body must be a JSON object with "model_name" and "url"'
BAD_LIMIT = f"bad request: limit must be an integer from 1 to {MAX_LIMIT}"
BAD_TOKEN = "bad request: invalid next_page_token"
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
#: loads running at once in one worker (each measures its own memory growth: few is more accurate)
LOAD_THREADS = 2


def not_loaded(name: str) -> HTTPError:
    return HTTPError(404, f"model '{name}' is not loaded")


# -- the requests' own syntax ------------------------------------------------------------------------

def load_request(body: bytes) -> tuple[str, str]:
    """``(model_name, url)`` of a ``POST /models`` body, or :class:`BadRequest` (D6's texts)."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(BAD_BODY) from None
    if not isinstance(doc, dict):
        raise BadRequest(BAD_BODY)
    for key in ("model_name", "url"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise BadRequest(f'bad request: missing "{key}"')
    return doc["model_name"], doc["url"]


def page_token(name: str) -> str:
    """The ``nextPageToken`` that resumes a listing at ``name``: its unpadded base64url (the same in
    every Rosetta runtime, opaque to SageMaker)."""
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def listing_request(query: str) -> tuple[int, str | None]:
    """``(limit, first name of the page or None)`` from ``GET /models``'s query, or :class:`BadRequest`."""
    params = parse_qs(query, keep_blank_values=True)
    raw_limit = params.get("limit", [""])[0]
    limit = DEFAULT_LIMIT
    if raw_limit:
        if not raw_limit.isascii() or not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise BadRequest(BAD_LIMIT)
        limit = int(raw_limit)
    token = params.get("next_page_token", [""])[0]
    if not token:
        return limit, None
    if not _TOKEN.fullmatch(token) or len(token) % 4 == 1:
        raise BadRequest(BAD_TOKEN)
    try:
        return limit, base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise BadRequest(BAD_TOKEN) from None


# -- memory ------------------------------------------------------------------------------------------

def folder_size(folder: Path) -> int:
    """The apparent size of a model folder: the byte sizes of its regular files, recursively."""
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


_PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes() -> int:
    """This process's resident memory (``/proc/self/statm``)."""
    with open("/proc/self/statm", "rb") as fh:
        return int(fh.read().split()[1]) * _PAGE


# -- the registry the workers share ------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    """A registered (fully loaded) model; ``id`` changes when the name is loaded again."""

    name: str
    url: str
    cost: int
    id: str

    def describe(self) -> dict[str, str]:
        return {"modelName": self.name, "modelUrl": self.url}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class State:
    generation: int = 0
    models: dict[str, Entry] = field(default_factory=dict)
    #: name → {"pid": worker, "cost": estimated bytes}: reserved by a load in progress
    loading: dict[str, dict[str, int]] = field(default_factory=dict)

    def prune(self) -> None:
        """Forget the reservations of workers that died while loading."""
        self.loading = {n: r for n, r in self.loading.items() if _alive(r["pid"])}

    def used(self) -> int:
        return sum(e.cost for e in self.models.values()) + sum(r["cost"] for r in self.loading.values())

    def to_json(self) -> str:
        return json.dumps({"generation": self.generation,
                           "models": {n: {"url": e.url, "cost": e.cost, "id": e.id} for n, e in self.models.items()},
                           "loading": self.loading})

    @classmethod
    def from_json(cls, text: str) -> State:
        doc: dict[str, Any] = json.loads(text)
        models = {n: Entry(n, m["url"], int(m["cost"]), m["id"]) for n, m in doc["models"].items()}
        return cls(int(doc["generation"]), models, {n: dict(r) for n, r in doc["loading"].items()})


class Registry:
    """``registry.json`` + the mapped ``generation`` counter in ``folder`` (see the module's text)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.file = folder / "registry.json"
        self._counter_file = folder / "generation"
        self._lock_file = folder / "lock"
        self._counter: mmap.mmap | None = None
        self._seen = -1
        self._state = State()

    def reset(self) -> None:
        """An empty registry: at server start, before any worker exists."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write(State())
        self._counter_file.write_bytes(bytes(8))
        self._lock_file.touch()

    def current(self) -> State:
        """The registry as of the last change any worker made (a cached read between changes)."""
        if self._counter is None:  # mapped in the worker, after the fork
            with open(self._counter_file, "r+b") as fh:
                self._counter = mmap.mmap(fh.fileno(), 8)
        generation: int = struct.unpack_from("<Q", self._counter)[0]
        if generation != self._seen:
            self._state = self._read()  # written before the counter moved: at least this new
            self._seen = generation
        return self._state

    @contextlib.contextmanager
    def update(self) -> Iterator[State]:
        """The registry, read and written back under the lock (only if the block raises nothing)."""
        with open(self._lock_file, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # held for microseconds: a read, a change, a rename
            state = self._read()
            state.prune()
            before = state.generation
            yield state
            self._write(state)
            if state.generation != before:
                self.current()  # maps the counter if needed
                assert self._counter is not None
                struct.pack_into("<Q", self._counter, 0, state.generation)

    def _read(self) -> State:
        return State.from_json(self.file.read_text())

    def _write(self, state: State) -> None:
        tmp = self.folder / f".registry.{os.getpid()}.tmp"
        tmp.write_text(state.to_json())
        os.replace(tmp, self.file)


# -- one worker's view -------------------------------------------------------------------------------

class ModelStore:
    """The models this worker serves, kept in step with the shared :class:`Registry`.

    ``prototype``: an adapter with the user's code loaded (``prepare()``); each model gets a copy.
    """

    def __init__(self, prototype: ModelAdapter, settings: ServingSettings, registry: Registry | None = None) -> None:
        self.prototype = prototype
        self.settings = settings
        self.registry = registry or Registry(settings.mme_state_dir)
        self.budget = settings.mme_memory_bytes
        self._held: dict[str, tuple[str, Predictor]] = {}
        self._pending: dict[str, tuple[str, asyncio.Future[Predictor]]] = {}
        self._loader: ThreadPoolExecutor | None = None
        self._generation = -1

    def state(self) -> State:
        """The registry; models no longer registered (or registered anew) are dropped on the way."""
        state = self.registry.current()
        if state.generation != self._generation:
            self._generation = state.generation
            for name, (load_id, _) in list(self._held.items()):
                entry = state.models.get(name)
                if entry is None or entry.id != load_id:
                    del self._held[name]
                    log.info("model %r dropped (unloaded through another worker)", name)
        return state

    # -- load / unload --------------------------------------------------------------------------------
    async def load(self, name: str, url: str) -> Entry:
        """Load ``url`` as ``name`` through this worker: 200, or 404 / 409 / 500 / 507 as :class:`HTTPError`."""
        folder = Path(url)
        if not folder.is_dir():
            raise HTTPError(404, f"no model at '{url}'")
        workers = self.settings.workers
        size = folder_size(folder)
        with self.registry.update() as state:
            if name in state.models or name in state.loading:
                raise HTTPError(409, f"model '{name}' is already loaded")
            if state.used() + size * workers > self.budget:
                log.warning("model %r (%d bytes on disk) does not fit: %d of %d bytes used", name, size,
                            state.used(), self.budget)
                raise HTTPError(507, f"not enough memory to load model '{name}'")
            state.loading[name] = {"pid": os.getpid(), "cost": size * workers}
        t0 = time.perf_counter()
        try:
            predictor, growth = await self._load_here(url)
        except Exception as exc:
            with self.registry.update() as state:
                state.loading.pop(name, None)
            log.warning("model %r failed to load from %s", name, url, exc_info=exc)
            raise HTTPError(500, f"cannot load model '{name}': {first_line(exc)}") from None
        cost = max(size, growth) * workers
        entry = Entry(name, url, cost, os.urandom(8).hex())
        with self.registry.update() as state:
            state.loading.pop(name, None)
            fits = state.used() + cost <= self.budget
            if fits:
                state.models[name] = entry
                state.generation += 1
        if not fits:  # its memory goes with the predictor
            log.warning("model %r took %d bytes once loaded: over the budget of %d", name, cost, self.budget)
            raise HTTPError(507, f"not enough memory to load model '{name}'")
        self._held[name] = (entry.id, predictor)
        log.info("model %r loaded from %s in %.2f s (cost %.1f MiB over %d workers)", name, url,
                 time.perf_counter() - t0, cost / 2**20, workers)
        return entry

    def unload(self, name: str) -> Entry:
        with self.registry.update() as state:
            entry = state.models.pop(name, None)
            if entry is None:
                raise not_loaded(name)
            state.generation += 1
        self._held.pop(name, None)
        log.info("model %r unloaded", name)
        return entry

    def predictors(self) -> list[Predictor]:
        """The models this worker holds now."""
        return [predictor for _, predictor in self._held.values()]

    # -- read -----------------------------------------------------------------------------------------
    def describe(self, name: str) -> Entry:
        entry = self.state().models.get(name)
        if entry is None:
            raise not_loaded(name)
        return entry

    def listing(self, limit: int, start: str | None) -> tuple[list[Entry], str | None]:
        """One page sorted by name from the first name ≥ ``start``, and the first name of the next page."""
        models = self.state().models
        names = sorted(models)
        i = bisect.bisect_left(names, start) if start is not None else 0
        page = names[i:i + limit]
        return [models[n] for n in page], names[i + limit] if i + limit < len(names) else None

    async def predictor(self, name: str) -> Predictor:
        """The model to invoke: held here, or loaded here now if another worker loaded it (404 if neither)."""
        for _ in range(3):  # another round only if it was unloaded and loaded again meanwhile
            entry = self.state().models.get(name)
            if entry is None:
                raise not_loaded(name)
            held = self._held.get(name)
            if held is not None and held[0] == entry.id:
                return held[1]
            pending = self._pending.get(name)
            if pending is None or pending[0] != entry.id:
                pending = (entry.id, asyncio.ensure_future(self._load_lazily(entry)))
                self._pending[name] = pending
            predictor = await asyncio.shield(pending[1])  # a client that goes away cancels only itself
            current = self.state().models.get(name)
            if current is not None and current.id == entry.id:
                self._held[name] = (entry.id, predictor)
                return predictor
        raise not_loaded(name)

    async def _load_lazily(self, entry: Entry) -> Predictor:
        try:
            predictor, _ = await self._load_here(entry.url)
            log.info("model %r loaded here too (first request for it in this worker)", entry.name)
            return predictor
        except Exception as exc:
            log.warning("model %r failed to load from %s", entry.name, entry.url, exc_info=exc)
            raise HTTPError(500, f"cannot load model '{entry.name}': {first_line(exc)}") from None
        finally:
            pending = self._pending.get(entry.name)
            if pending is not None and pending[0] == entry.id:
                del self._pending[entry.name]

    async def _load_here(self, url: str) -> tuple[Predictor, int]:
        if self.prototype.inline:  # an embedded R must only ever be called from this thread
            return self._load_sync(url)
        if self._loader is None:
            self._loader = ThreadPoolExecutor(LOAD_THREADS, thread_name_prefix="load")
        return await asyncio.get_running_loop().run_in_executor(self._loader, self._load_sync, url)

    def _load_sync(self, url: str) -> tuple[Predictor, int]:
        """The user's load path and ``load`` hook, then the one warm-up prediction (as single-model mode);
        returns the predictor and the resident-memory growth it caused."""
        before = resident_bytes()
        adapter = copy.copy(self.prototype)
        adapter.load(Path(url))
        took = warm_up(adapter)
        predictor = Predictor(adapter, self.settings)
        predictor.fast_model = took is not None and took < FAST_WARM_UP_S and self.settings.workers >= 2
        return predictor, max(0, resident_bytes() - before)
