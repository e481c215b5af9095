"""The instances of one job (``InstanceCount``): names, ``resourceconfig.json``, input sharding, outputs.

- Hosts are ``algo-1`` … ``algo-N``, the names SageMaker gives them; each host is a container on a
  per-job network under its name, with its own ``/opt/ml``.
- ``ShardedByS3Key``: SageMaker documents only that "each instance gets approximately 1/n of the
  number of S3 objects" (``S3DataSource.S3DataDistributionType``), not which host gets which
  object, and the SDK's local mode refuses that distribution. Locally the objects under the prefix,
  sorted by key (S3's listing order), go round-robin: object *i* (from 0) to host ``algo-(i mod N + 1)``.
  Shards are disjoint, their union is the input, and their sizes differ by at most one object; a
  prefix with fewer objects than hosts leaves the last hosts without data (SageMaker warns about
  that too). Code must not rely on which host gets which object.
- Outputs of several hosts (a training job's ``/opt/ml/model`` and ``/opt/ml/output/data``, a
  processing output) are merged into one: every host's files. That is what the SDK's local mode
  does, after the service ("As the official SageMaker Training Service, it will override duplicate
  files if multiple containers have the same file names", ``sagemaker.train.local``
  ``retrieve_artifacts``). Which copy of a duplicate SageMaker keeps is not documented; locally the
  first host's (``algo-1``, the training toolkit's master host) wins, so a model written by the
  first host comes out whole. Write a file on one host only (``cluster().is_first``).
"""

from __future__ import annotations

import filecmp
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rosetta_orchestrator.local.store import Store, split_uri

GROUP = "homogeneousCluster"


def names(count: int) -> list[str]:
    """``algo-1`` … ``algo-N``."""
    return [f"algo-{i + 1}" for i in range(max(1, count))]


def resource_config(current: str, hosts: Sequence[str], instance_type: str = "ml.m5.large") -> dict[str, Any]:
    """``/opt/ml/input/config/resourceconfig.json`` of one host, in SageMaker's shape (T-05)."""
    return {
        "current_host": current,
        "current_instance_type": instance_type,
        "current_group_name": GROUP,
        "hosts": list(hosts),
        "instance_groups": [{"instance_group_name": GROUP, "instance_type": instance_type, "hosts": list(hosts)}],
        "network_interface_name": "eth0",
    }


def shard(keys: Sequence[str], count: int) -> list[list[str]]:
    """The round-robin split of ``keys`` (sorted) over ``count`` hosts (see the module's rule)."""
    out: list[list[str]] = [[] for _ in range(max(1, count))]
    for i, key in enumerate(sorted(keys)):
        out[i % len(out)].append(key)
    return out


def relative_key(prefix_uri: str, key_uri: str) -> str:
    """Where an object under an S3 prefix lands below the channel folder (the store's own rule:
    the key after the prefix when the prefix is a "folder", else after the prefix's last ``/``)."""
    _, prefix = split_uri(prefix_uri)
    _, key = split_uri(key_uri)
    if key == prefix:
        return key.rsplit("/", 1)[-1]
    if prefix.endswith("/") or key[len(prefix):].startswith("/"):
        return key[len(prefix):].lstrip("/")
    return key[len(prefix.rsplit("/", 1)[0]):].lstrip("/") if "/" in prefix else key


def fetch_shard(store: Store, prefix_uri: str, keys: Sequence[str], dest: Path) -> list[Path]:
    """Copy the objects ``keys`` (under ``prefix_uri``) into ``dest``, keeping their sub-folders."""
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for key in keys:
        target = dest / relative_key(prefix_uri, key)
        store.get(key, target)
        copied.append(target)
    return copied


def distribute(store: Store, uri: str, sharded: bool, dests: Sequence[Path],
               log: Callable[[str], None], what: str) -> None:
    """Fetch the prefix ``uri`` once per host folder in ``dests``: every object to every host
    (``FullyReplicated``) or one shard each (``ShardedByS3Key``)."""
    if not sharded:
        store.fetch(uri, dests[0])
        for other in dests[1:]:
            shutil.copytree(dests[0], other, dirs_exist_ok=True)
        return
    keys = store.keys(uri)
    if not keys:
        store.fetch(uri, dests[0])  # raises the store's "nothing at …" error
    parts = shard(keys, len(dests))
    for host, (part, dest) in enumerate(zip(parts, dests, strict=True)):
        fetch_shard(store, uri, part, dest)
        if not part:
            log(f"[rosetta] {what}: algo-{host + 1} gets no object: {len(keys)} object(s) under {uri} for "
                f"{len(dests)} hosts (ShardedByS3Key gives each host about 1/{len(dests)} of the objects)")
    sizes = ", ".join(f"algo-{i + 1}: {len(p)}" for i, p in enumerate(parts))
    log(f"[rosetta] {what}: ShardedByS3Key, {len(keys)} object(s) round-robin by key ({sizes})")


def merge(sources: Sequence[tuple[str, Path]], dest: Path, log: Callable[[str], None], what: str) -> None:
    """Merge the folders of several hosts (given in host order) into ``dest``: a file several hosts
    wrote keeps the first host's copy; the names written differently by several hosts are logged."""
    dest.mkdir(parents=True, exist_ok=True)
    owner: dict[str, str] = {}
    clashes: list[str] = []
    for host, src in reversed(sources):
        if not src.is_dir():
            continue
        for f in sorted(p for p in src.rglob("*") if p.is_file()):
            rel = f.relative_to(src).as_posix()
            target = dest / rel
            if rel in owner and not filecmp.cmp(f, target, shallow=False):
                clashes.append(f"{rel} ({host}, {owner[rel]})")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
            owner[rel] = host
    if clashes:
        shown = ", ".join(clashes[:5]) + (f" and {len(clashes) - 5} more" if len(clashes) > 5 else "")
        log(f"[rosetta] {what}: files written differently by several hosts, {sources[0][0]}'s kept: {shown} "
            "(SageMaker keeps one of them: write them on one host, e.g. when cluster().is_first)")
