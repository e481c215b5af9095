"""Trained golden setups kept between runs, keyed by the image that trained them.

Training a setup is a container start per setup and image (a Julia start costs seconds); the
model it writes depends only on the program image and the setup's files. So the model folder is
kept under ``$ROSETTA_GOLDEN_CACHE`` (default ``~/.cache/rosetta/golden``), in an entry named by
the program image's ID and a hash of the setup: a rebuilt image has a new ID, hence new entries.
Processes that need the same entry at once (xdist workers, images checked in parallel) take a
file lock, so one trains and the others read. Entries unused for a week are removed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: entries not used for this long are removed at the next lookup
MAX_AGE_S = 7 * 24 * 3600


def cache_dir() -> Path:
    return Path(os.environ.get("ROSETTA_GOLDEN_CACHE") or Path.home() / ".cache" / "rosetta" / "golden")


def key(image_id: str, setup: Any) -> str:
    """``<image id>-<hash of the setup's training inputs>``."""
    digest = hashlib.sha256(json.dumps(setup, sort_keys=True).encode()).hexdigest()[:16]
    return f"{image_id.removeprefix('sha256:')[:16]}-{digest}"


def _prune(base: Path) -> None:
    now = time.time()
    for entry in base.iterdir() if base.is_dir() else []:
        try:
            if now - entry.stat().st_mtime <= MAX_AGE_S:
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink()
        except OSError:
            pass


def cached_model(entry_key: str, train: Callable[[], Path]) -> tuple[Path, bool]:
    """The cached model folder of ``entry_key``, made by ``train()`` (which returns a model folder)
    when absent; ``(folder, True)`` when it came from the cache."""
    base = cache_dir()
    base.mkdir(parents=True, exist_ok=True)
    _prune(base)
    entry = base / entry_key
    with open(base / f".{entry_key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        model = entry / "model"
        if model.is_dir():
            os.utime(entry)
            return model, True
        trained = train()
        tmp = base / f".{entry_key}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(trained, tmp / "model")
        tmp.rename(entry)
        return model, False
