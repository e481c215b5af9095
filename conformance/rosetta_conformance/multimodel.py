"""A multi-model server under test and the models it is given (the MM- clauses).

SageMaker's side of the contract, played by the suite: the models live in a folder mounted
read-only at ``/opt/ml/models`` (one ``<name>/model`` folder per model, as SageMaker extracts each
``TargetModel`` archive), nothing is mounted at ``/opt/ml/model``, the container gets
``SAGEMAKER_MULTI_MODEL=true``, and the model API is driven over HTTP
(https://docs.aws.amazon.com/sagemaker/latest/dg/mms-container-apis.html).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagemaker_rosetta.containers import Response, Server

#: where SageMaker puts the models of a multi-model endpoint inside the container
MODELS_ROOT = "/opt/ml/models"
MIB = 1 << 20


@dataclass
class ModelStore:
    """The host folder mounted at /opt/ml/models: copies of one trained model under any name.

    Folders are made on demand (the mount is a bind mount: new host folders appear inside).
    A padded copy gets a sparse ``padding.bin`` of ``pad_mb`` MiB: it weighs that much on disk as
    sizes are counted (apparent size) and in memory for an image that reads its model files, yet
    takes no disk space.
    """

    root: Path
    source: Path
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def place(self, name: str, *, pad_mb: int = 0) -> str:
        """The model copied to ``<root>/<name>/model``; returns its url as the container sees it."""
        folder = self.root / name / "model"
        with self._lock:
            if not folder.is_dir():
                shutil.copytree(self.source, folder)
                if pad_mb:
                    with open(folder / "padding.bin", "wb") as fh:
                        fh.truncate(pad_mb * MIB)
                for p in [self.root / name, *(self.root / name).rglob("*")]:  # any container user reads them
                    os.chmod(p, 0o755 if p.is_dir() else 0o644)
        return f"{MODELS_ROOT}/{name}/model"


def path_segment(name: str) -> str:
    return urllib.parse.quote(name, safe="")


@dataclass
class MultiModelServer:
    """A ``serve`` container in multi-model mode and the requests SageMaker sends it."""

    server: Server
    store: ModelStore
    ready_seconds: float
    load_timeout: float = 120.0
    #: GET /models right after the first /ping 200 (MM-02)
    first_listing: Response | None = None
    #: serializes the checks that share this server (each leaves it with no model of its own loaded)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self, name: str, url: str | None = None, *, pad_mb: int = 0) -> Response:
        url = url if url is not None else self.store.place(name, pad_mb=pad_mb)
        body = json.dumps({"model_name": name, "url": url}).encode()
        return self.raw_load(body)

    def raw_load(self, body: bytes, content_type: str = "application/json") -> Response:
        return self.server.request("POST", "/models", body, {"Content-Type": content_type,
                                                             "Accept": "application/json"},
                                   timeout=self.load_timeout)

    def get(self, name: str) -> Response:
        return self.server.request("GET", f"/models/{path_segment(name)}", None, {"Accept": "application/json"})

    def delete(self, name: str) -> Response:
        return self.server.request("DELETE", f"/models/{path_segment(name)}", None, {})

    def listing(self, query: str = "") -> Response:
        return self.server.request("GET", "/models" + (f"?{query}" if query else ""), None,
                                   {"Accept": "application/json"})

    def invoke(self, name: str, body: bytes, content_type: str | None, accept: str | None = None,
               headers: dict[str, str] | None = None, timeout: float = 60) -> Response:
        sent = dict(headers or {})
        if content_type is not None:
            sent["Content-Type"] = content_type
        if accept is not None:
            sent["Accept"] = accept
        return self.server.request("POST", f"/models/{path_segment(name)}/invoke", body, sent, timeout)

    def ping(self, timeout: float = 5) -> Response:
        return self.server.request("GET", "/ping", timeout=timeout)

    def unload_all(self, names: list[str]) -> None:
        """Leave the server as the next check expects it: none of ``names`` loaded (quiet on errors)."""
        for name in names:
            try:
                self.delete(name)
            except OSError:
                pass


def json_body(r: Response) -> Any:
    """The response parsed as JSON, or None."""
    try:
        return json.loads(r.body)
    except ValueError:
        return None


def listed_names(r: Response) -> list[str] | None:
    """``modelName`` of each entry of a ``{"models": [...]}`` listing; None when it is not one."""
    doc = json_body(r)
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list):
        return None
    names = [m.get("modelName") for m in doc["models"] if isinstance(m, dict)]
    return [str(n) for n in names] if len(names) == len(doc["models"]) else None
