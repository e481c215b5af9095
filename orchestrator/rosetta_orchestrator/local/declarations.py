"""Which hyperparameters an image declares, read from the image itself before a tuning job starts.

All three Rosetta runtimes type their hyperparameters from the user's declaration (Python: the
dataclass of ``fit``; R: ``hyperparameters <- list(...)``; Julia: ``hyperparameters(::Type{M})``)
and fail a job that gives an undeclared name with the same failure line, a golden case of the
contract (``hp-unknown-key``: ``HyperparameterError: unknown hyperparameter 'nope'; declared:
a, b, c``). They parse the hyperparameters before they look at the channels, and a channel that
``inputdataconfig.json`` names but that has no folder fails with a ``DataError`` before ``fit``.

So the probe is one ``IMAGE train`` on a throwaway ``/opt/ml`` whose hyperparameters hold a name
no one declares and whose ``inputdataconfig.json`` names a missing channel: a runtime with a
declaration answers with the line above (the declared names), one without goes on to the
``DataError`` (any name is accepted). No user code beyond loading runs, and no data is read.
The first probe sends ``_tuning_objective_metric``, which SageMaker adds to every training job of a
tuning job ("SageMaker adds ``_tuning_objective_metric`` automatically",
[Define hyperparameter ranges](https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-define-ranges.html)):
an image that rejects it would fail every tuning job on AWS. A second probe (only when the first
passed that name) reads the declaration with a name nobody uses.

Results are kept per engine image ID for the life of the process.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sagemaker_rosetta import local_images
from sagemaker_rosetta.containers import DockerError, RunTimeout, ml_root, run

RESERVED = "_tuning_objective_metric"
PROBE = "rosetta_probe_not_declared"
_UNKNOWN = re.compile(r"unknown hyperparameter (.+?); declared: ?(.*)$")
_cache: dict[str, Declaration] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Declaration:
    image: str
    #: the declared names; None when the image accepts any name or the probe could not tell
    names: tuple[str, ...] | None
    #: the image fails a job that carries ``_tuning_objective_metric`` (as every tuning job does on AWS)
    rejects_reserved: bool
    #: how it was learned (for messages)
    note: str

    def undeclared(self, wanted: list[str]) -> list[str]:
        if self.names is None:
            return []
        return [n for n in wanted if n not in self.names and not n.startswith("sagemaker_") and n != RESERVED]


def declaration(image: str, env: Mapping[str, str] | None = None, timeout: float = 180) -> Declaration:
    """The hyperparameter declaration of ``image`` (probed once per image ID)."""
    try:
        key = local_images.image_id(image) + json.dumps(dict(env or {}), sort_keys=True)
    except DockerError:
        key = image
    with _lock:
        if key in _cache:
            return _cache[key]
    first = _probe(image, {RESERVED: "rosetta-probe"}, env, timeout)
    if first is not None and first[0] is not None and RESERVED in first[0]:
        found = Declaration(image, first[1], True, "undeclared names rejected")
    elif first is None:
        found = Declaration(image, None, False, "the probe could not run")
    else:
        second = _probe(image, {PROBE: "1"}, env, timeout)
        if second is not None and second[0] is not None:
            found = Declaration(image, second[1], False, "undeclared names rejected")
        else:
            found = Declaration(image, None, False, "any hyperparameter name is accepted")
    with _lock:
        _cache[key] = found
    return found


def _probe(image: str, hyperparameters: dict[str, str], env: Mapping[str, str] | None,
           timeout: float) -> tuple[list[str] | None, tuple[str, ...] | None] | None:
    """(unknown names, declared names) from the failure line; (None, None) when the image got past
    the hyperparameters; None when the probe itself could not run."""
    base = Path(tempfile.mkdtemp(prefix="rosetta-hp-probe-"))
    try:
        root = ml_root(base / "ml", hyperparameters=hyperparameters, channels={})
        (root / "input" / "config" / "inputdataconfig.json").write_text(json.dumps(
            {"rosetta-probe-missing": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                                       "RecordWrapperType": "None"}}))
        (root / "input" / "config" / "resourceconfig.json").write_text(json.dumps(
            {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}))
        try:
            run(image, ["train"], env=dict(env or {}), volumes={root: "/opt/ml"}, timeout=timeout)
        except RunTimeout:
            return None
        failure = root / "output" / "failure"
        first = failure.read_text(errors="replace").strip().splitlines()[:1] if failure.is_file() else []
        m = _UNKNOWN.search(first[0]) if first else None
        if not m:
            return None, None
        unknown = re.findall(r"'([^']*)'", m.group(1))
        declared = m.group(2).strip()
        names = () if declared in ("", "none") else tuple(n.strip() for n in declared.split(",") if n.strip())
        return unknown, names
    finally:
        shutil.rmtree(base, ignore_errors=True)
