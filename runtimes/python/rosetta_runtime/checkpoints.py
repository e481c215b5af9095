"""Checkpoints for jobs that stop and restart (spot training; T-13, D8).

The folder is ``LocalPath`` of ``checkpointconfig.json`` when SageMaker writes one, else
``/opt/ml/checkpoints``; SageMaker syncs it to S3 and restores it into the next attempt, so
``load_checkpoint()`` at the start of ``fit`` resumes where ``save_checkpoint`` left off.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

from rosetta_runtime.errors import DataError
from rosetta_runtime.paths import Paths

CHECKPOINT_FILE = "rosetta-checkpoint.pkl"


def checkpoint_dir(paths: Paths | None = None) -> Path:
    """The checkpoint folder (created if missing), for users who write their own files there."""
    paths = paths or Paths.from_env()
    folder = paths.checkpoints
    if paths.checkpointconfig.is_file():
        try:
            doc = json.loads(paths.checkpointconfig.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"checkpointconfig.json is not valid JSON: {exc}") from exc
        local = doc.get("LocalPath") if isinstance(doc, dict) else None
        if isinstance(local, str) and local:
            folder = Path(local)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_checkpoint(obj: Any, paths: Paths | None = None) -> Path:
    """Pickle ``obj`` as the checkpoint, atomically: a stop in the middle leaves the previous one whole."""
    import tempfile  # only training needs it: the server never imports it

    file = checkpoint_dir(paths) / CHECKPOINT_FILE
    fd, tmp = tempfile.mkstemp(prefix=f".{CHECKPOINT_FILE}.", dir=file.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return file


def load_checkpoint(paths: Paths | None = None) -> Any | None:
    """The object of the last :func:`save_checkpoint`, or None when there is no checkpoint."""
    file = checkpoint_dir(paths) / CHECKPOINT_FILE
    if not file.is_file():
        return None
    try:
        with file.open("rb") as fh:
            return pickle.load(fh)  # written by this job's own code: trusted like the model artifact
    except Exception as exc:
        raise DataError(f"checkpoint {file} is unreadable: {type(exc).__name__}: {exc}") from exc
