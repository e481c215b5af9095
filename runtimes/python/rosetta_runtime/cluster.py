"""The training cluster as SageMaker describes it in ``resourceconfig.json`` (T-05, T-22, D7)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from rosetta_runtime.errors import DataError
from rosetta_runtime.paths import Paths

DEFAULT_HOST = "algo-1"
DEFAULT_INTERFACE = "eth0"


@dataclass(frozen=True)
class Cluster:
    """The hosts of this training job and this host's place among them.

    ``hosts`` is sorted by code point (``algo-10`` before ``algo-2``) as the training toolkit sorts it;
    ``is_first`` says whether this host is the first of them (the toolkit's master host), the one
    that usually runs a tracker or writes the model.
    """

    hosts: tuple[str, ...]
    current_host: str
    is_first: bool
    network_interface: str

    @classmethod
    def from_config(cls, doc: dict[str, object] | None) -> Cluster:
        """From the parsed ``resourceconfig.json``; ``None`` (no file) is the single host ``algo-1``."""
        doc = doc or {}
        current = doc.get("current_host")
        current = current if isinstance(current, str) and current else DEFAULT_HOST
        listed = doc.get("hosts")
        hosts = tuple(sorted(str(h) for h in listed)) if isinstance(listed, list) and listed else (current,)
        interface = doc.get("network_interface_name")
        return cls(hosts=hosts, current_host=current, is_first=current == hosts[0],
                   network_interface=interface if isinstance(interface, str) and interface else DEFAULT_INTERFACE)


def read_resourceconfig(paths: Paths) -> dict[str, object] | None:
    """``resourceconfig.json`` as a dict, None when the file is absent."""
    if not paths.resourceconfig.is_file():
        return None
    try:
        doc = json.loads(paths.resourceconfig.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"resourceconfig.json is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise DataError("resourceconfig.json must hold an object")
    return doc


def cluster(paths: Paths | None = None) -> Cluster:
    """This job's cluster, from ``/opt/ml/input/config/resourceconfig.json`` (single host ``algo-1`` on
    ``eth0`` without one). Call it in ``fit`` to split work between hosts."""
    return Cluster.from_config(read_resourceconfig(paths or Paths.from_env()))
