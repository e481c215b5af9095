"""SageMaker's files on the host side: a fake ``/opt/ml`` for a job, and ``model.tar.gz`` in and out."""

from __future__ import annotations

import json
import shutil
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path


def ml_root(base: Path, *, hyperparameters: Mapping[str, str] | None = None,
            channels: Mapping[str, Path | Mapping[str, str]] | None = None,
            hosts: Sequence[str] = ("algo-1",), content_type: str | None = "text/csv",
            current_host: str | None = None) -> Path:
    """Lay out a fake ``/opt/ml`` under ``base`` (T-01, T-04, T-05, T-07).

    ``channels`` maps a channel name to a directory to copy, or to ``{filename: text}``.
    ``current_host`` (default: the first of ``hosts``) is this container's name in
    ``resourceconfig.json``: a multi-host job lays out one root per host.
    """
    cfg = base / "input" / "config"
    cfg.mkdir(parents=True, exist_ok=True)
    for sub in ("model", "output/data", "checkpoints"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (cfg / "hyperparameters.json").write_text(json.dumps(dict(hyperparameters or {})))
    data_cfg: dict[str, dict[str, str]] = {}
    for ch, src in (channels or {}).items():
        dst = base / "input" / "data" / ch
        dst.mkdir(parents=True, exist_ok=True)
        if isinstance(src, Path):
            for f in src.iterdir():
                if f.is_file():
                    shutil.copy(f, dst / f.name)
        else:
            for fname, text in src.items():
                (dst / fname).write_text(text)
        entry = {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                 "RecordWrapperType": "None"}
        if content_type:
            entry["ContentType"] = content_type
        data_cfg[ch] = entry
    (cfg / "inputdataconfig.json").write_text(json.dumps(data_cfg))
    (cfg / "resourceconfig.json").write_text(json.dumps(
        {"current_host": current_host or hosts[0], "hosts": sorted(hosts), "network_interface_name": "eth0"}))
    # containers may run as another user: let them write outputs
    for p in [base, *base.rglob("*")]:
        if p.is_dir():
            p.chmod(0o777)
    return base


def pack_model(model_dir: Path, tarball: Path) -> Path:
    """``model.tar.gz`` of the model dir's *contents*, files at the archive root, as SageMaker packs it (T-14)."""
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "w:gz") as tar:
        for p in sorted(model_dir.iterdir()):
            tar.add(p, arcname=p.name)
    return tarball


def unpack_model(tarball: Path, dest: Path) -> Path:
    """Extract ``model.tar.gz`` into a fresh model dir, as SageMaker does before ``serve`` (S-01).

    Readable by any container user; callers mount it read-only (S-02).
    """
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, filter="data")
    for p in [dest, *dest.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest
