"""Multi-model endpoints: ``TargetModel=<key>`` served the way SageMaker serves it.

AWS's multi-model container contract (https://docs.aws.amazon.com/sagemaker/latest/dg/mms-container-apis.html,
decisions D6): the first invocation of a model copies its archive from the endpoint's prefix,
extracts it under ``/opt/ml/models/<name>/model`` and loads it (``POST /models``); later ones go to
``POST /models/<name>/invoke``. When the container answers 507 (not enough memory), the least
recently used model is unloaded (``DELETE /models/<name>``) and the load is tried again, as
SageMaker "unloads unused models" when an instance runs out of memory.

Locally the archives are extracted on the host into the endpoint's state folder, mounted read-only
at ``/opt/ml/models``; an extracted model stays on disk after it is unloaded (SageMaker keeps it on
the instance's storage too), so loading it again costs only the load.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from sagemaker_rosetta.endpoint import errors
from sagemaker_rosetta.endpoint.state import Endpoint, State
from sagemaker_rosetta.mlroot import unpack_model

if TYPE_CHECKING:
    from sagemaker_rosetta.endpoint.routing import Answer, Invocation, Router

#: where the container sees the models (the contract's ``url``)
MODELS_ROOT = "/opt/ml/models"


def model_name(target: str) -> str:
    """The name a TargetModel is loaded under: its key without ``.tar.gz`` when that is a plain
    name (``customer-7.tar.gz`` → ``customer-7``), else a readable part plus a hash of the key."""
    base = target[: -len(".tar.gz")] if target.endswith(".tar.gz") else target
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", base).strip(".-") or "model"
    if safe != base or base == target or len(safe) > 100:
        safe = f"{safe[:80]}-{hashlib.sha1(target.encode()).hexdigest()[:8]}"
    return safe


def extracted_root(state: State, endpoint: str) -> Path:
    """The host folder mounted at /opt/ml/models."""
    return state.models(endpoint) / "multi"


class MultiModels:
    def __init__(self, state: State, router: Router) -> None:
        self.state, self.router = state, router
        #: endpoint id → loaded model names, least recently used first
        self._loaded: dict[str, OrderedDict[str, None]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        #: (endpoint id, model) → invocations in flight; notified when one ends
        self._inflight: dict[tuple[str, str], int] = {}
        self._changed = threading.Condition()

    def invoke(self, ep: Endpoint, inv: Invocation) -> Answer:
        from sagemaker_rosetta.endpoint.routing import Answer

        target = str(inv.target_model)
        if any(part == ".." for part in target.split("/")) or target.startswith("/"):
            raise errors.validation_error(f"TargetModel {target!r} must be a key under the endpoint's prefix.")
        name = model_name(target)
        member = ep.members[0]
        headers = self.router._headers(inv, inv.content_type, inv.accept)
        headers["X-Amzn-SageMaker-Target-Model"] = target
        key = (ep.id, name)
        with self._changed:  # in flight: never chosen for unloading until its answer is back
            self._inflight[key] = self._inflight.get(key, 0) + 1
        try:
            for attempt in (0, 1):
                if not self._is_loaded(ep, name):
                    self._ensure(ep, target, name)
                reply = self.router.call(ep, 1, member, f"/models/{quote(name, safe='')}/invoke", inv.body,
                                         headers, ok=(200, 404) if attempt == 0 else (200,))
                if reply.status == 404:  # unloaded from outside (the container restarted, another front)
                    self._forget(ep, name)
                    continue
                self._touch(ep, name)
                return Answer(reply.body, reply.headers.get("content-type"),
                              reply.headers.get("x-amzn-sagemaker-custom-attributes"), ep.variant)
            raise AssertionError("unreachable")
        finally:
            with self._changed:
                self._inflight[key] -= 1
                if not self._inflight[key]:
                    del self._inflight[key]
                self._changed.notify_all()

    # -- the LRU ----------------------------------------------------------------------------
    def _lru(self, ep: Endpoint) -> OrderedDict[str, None]:
        with self._lock:
            lru = self._loaded.get(ep.id)
            if lru is not None:
                return lru
        # first use by this front: what the container holds already (a front restarted)
        found: OrderedDict[str, None] = OrderedDict()
        try:
            reply = self.router.call(ep, 1, ep.members[0], "/models?limit=1000", None, {}, method="GET")
            for m in json.loads(reply.body).get("models", []):
                found[str(m["modelName"])] = None
        except (errors.ApiError, ValueError, KeyError, TypeError):
            pass
        with self._lock:
            return self._loaded.setdefault(ep.id, found)

    def _is_loaded(self, ep: Endpoint, name: str) -> bool:
        lru = self._lru(ep)
        with self._lock:
            return name in lru

    def _touch(self, ep: Endpoint, name: str) -> None:
        lru = self._lru(ep)
        with self._lock:
            lru[name] = None
            lru.move_to_end(name)

    def _forget(self, ep: Endpoint, name: str) -> None:
        lru = self._lru(ep)
        with self._lock:
            lru.pop(name, None)

    def _oldest(self, ep: Endpoint, but: str) -> str | None:
        """The least recently used loaded model that no invocation is using."""
        lru = self._lru(ep)
        with self._lock:
            names = [n for n in lru if n != but]
        with self._changed:
            return next((n for n in names if (ep.id, n) not in self._inflight), None)

    def _endpoint_lock(self, ep: Endpoint) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(ep.id, threading.Lock())

    # -- loading ----------------------------------------------------------------------------
    def _ensure(self, ep: Endpoint, target: str, name: str) -> None:
        """Extract (first time) and load ``name``; one load at a time per endpoint, so a model is
        never loaded twice and an unload never races a load. Invocations of loaded models do not
        wait. On 507 the least recently used model not in use is unloaded and the load tried again;
        when every loaded model is in use, the load waits (without the lock) for one to be free."""
        member = ep.members[0]
        body = json.dumps({"model_name": name, "url": f"{MODELS_ROOT}/{name}/model"}).encode()
        deadline = time.monotonic() + self.router.timeout
        while True:
            with self._endpoint_lock(ep):
                if self._is_loaded(ep, name):
                    return
                self._extract(ep, target, name)
                while True:
                    reply = self.router.call(ep, 1, member, "/models", body, {"Content-Type": "application/json"},
                                             ok=(200, 409, 507))
                    if reply.status in (200, 409):  # 409: loaded already (by a front before this one)
                        self._touch(ep, name)
                        return
                    victim = self._oldest(ep, but=name)
                    if victim is None:
                        break
                    self.router.call(ep, 1, member, f"/models/{quote(victim, safe='')}", None, {}, method="DELETE",
                                     ok=(200, 404))
                    self._forget(ep, victim)
                loaded = self._others_loaded(ep, name)
            if not loaded or time.monotonic() > deadline:  # nothing to unload: the model alone does not fit
                raise errors.model_error(where=self.router.where(ep, 1, member), status=507,
                                         text=reply.body.decode("utf-8", errors="replace"),
                                         log_stream=self.router.log_stream(ep, member),
                                         logs_hint=self.router.hint(ep))
            with self._changed:  # every loaded model is answering a request: wait for one to finish
                self._changed.wait(timeout=1)

    def _others_loaded(self, ep: Endpoint, name: str) -> bool:
        lru = self._lru(ep)
        with self._lock:
            return any(n != name for n in lru)

    def _extract(self, ep: Endpoint, target: str, name: str) -> None:
        dest = extracted_root(self.state, ep.name) / name
        if (dest / "model").is_dir():
            return
        source = str((ep.multi_model or {}).get("source") or "")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".extract-", dir=dest.parent) as tmp:
            archive = Path(tmp) / "model.tar.gz"
            self._fetch(ep, source, target, archive)
            try:
                unpack_model(archive, Path(tmp) / "out" / "model")
            except Exception as exc:  # tarfile raises several types for a file that is not an archive
                raise errors.validation_error(f"TargetModel {target} is not a model.tar.gz ({exc}).") from None
            (Path(tmp) / "out").chmod(0o755)
            shutil.rmtree(dest, ignore_errors=True)
            (Path(tmp) / "out").replace(dest)

    def _fetch(self, ep: Endpoint, source: str, target: str, archive: Path) -> None:
        where = source.rstrip("/") + "/" + target
        if source.startswith("s3://"):
            from sagemaker_rosetta.endpoint.spec import open_store

            mm = ep.multi_model or {}
            try:
                open_store(mm.get("store"), mm.get("s3_endpoint_url")).get(where, archive)
            except Exception as exc:  # the store's errors (StoreError, botocore's ClientError)
                raise errors.validation_error(f"Could not find model data for TargetModel {target} at {where} "
                                              f"({exc}).") from None
            return
        path = Path(where)
        if not path.is_file():
            raise errors.validation_error(f"Could not find model data for TargetModel {target}: no file {path}.")
        shutil.copyfile(path, archive)
