"""``CheckpointConfig`` of a training job: the checkpoint folder survives a stop and comes back.

SageMaker "copies checkpoint data from the local path to Amazon S3" while the job runs and, when a
job restarts (managed spot training after an interruption, a retry), copies the checkpoints from
``S3Uri`` back into ``LocalPath`` (default ``/opt/ml/checkpoints``) before the container starts
([Checkpoints in Amazon SageMaker AI](https://docs.aws.amazon.com/sagemaker/latest/dg/model-checkpoints.html)).
The local runner does the same around each attempt: it writes
``/opt/ml/input/config/checkpointconfig.json`` (``{"LocalPath": …, "S3Uri": …}``, T-13), mounts a
folder of the job's work folder at ``LocalPath``, restores what is under ``S3Uri`` into it before
the container starts, and puts the folder's files at ``S3Uri`` when the container ends, whether it
succeeded, failed or was stopped. A retried attempt (``RetryPolicies``) and a ``--resume``d
execution therefore start from the last checkpoint, which the runtimes' ``load_checkpoint()`` reads
(decisions D8). With several hosts, every host gets the same restored files and their folders are
merged back in host order (:func:`rosetta_orchestrator.local.hosts.merge`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosetta_orchestrator.local.hosts import merge
from rosetta_orchestrator.local.store import Store, StoreError

DEFAULT_LOCAL_PATH = "/opt/ml/checkpoints"


@dataclass(frozen=True)
class Checkpoints:
    s3_uri: str
    local_path: str

    @classmethod
    def of(cls, args: dict[str, Any]) -> Checkpoints | None:
        cfg = args.get("CheckpointConfig") or {}
        if not cfg.get("S3Uri"):
            return None
        return cls(str(cfg["S3Uri"]).rstrip("/"), str(cfg.get("LocalPath") or DEFAULT_LOCAL_PATH))

    def config(self) -> str:
        """``checkpointconfig.json``."""
        return json.dumps({"LocalPath": self.local_path, "S3Uri": self.s3_uri})

    def restore(self, store: Store, folders: Sequence[Path], log: Callable[[str], None]) -> int:
        """Fill each host's (empty) checkpoint folder from ``S3Uri``; the number of files restored."""
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            folder.chmod(0o777)
        base = self.s3_uri + "/"
        try:  # only keys below the folder (a prefix ".../Train" must not take ".../Train2/…")
            keys = [k for k in store.keys(base) if k.startswith(base)]
        except StoreError:
            keys = []
        if not keys:
            return 0
        for key in keys:
            store.get(key, folders[0] / key[len(base):])
        for other in folders[1:]:
            shutil.copytree(folders[0], other, dirs_exist_ok=True)
        for folder in folders:
            for p in [folder, *folder.rglob("*")]:
                p.chmod(0o777 if p.is_dir() else 0o666)
        log(f"[rosetta] restored {len(keys)} checkpoint file(s) from {self.s3_uri} into {self.local_path}")
        return len(keys)

    def persist(self, store: Store, folders: Sequence[tuple[str, Path]], scratch: Path,
                log: Callable[[str], None]) -> int:
        """Put the checkpoint folder(s) at ``S3Uri``; the number of files saved."""
        if len(folders) == 1:
            source = folders[0][1]
        else:
            shutil.rmtree(scratch, ignore_errors=True)
            merge(folders, scratch, log, "checkpoints")
            source = scratch
        files = [p for p in source.rglob("*") if p.is_file()] if source.is_dir() else []
        if files:
            store.put_dir(source, self.s3_uri)
            log(f"[rosetta] saved {len(files)} checkpoint file(s) from {self.local_path} to {self.s3_uri}")
        return len(files)
