"""The per-image manifest (TOML): the model-specific inputs a black-box check cannot guess.

Paths are relative to the manifest file. Example (examples/iris/python/conformance.toml)::

    [training]
    channels = { train = "../data/train.csv" }      # file or directory per channel
    hyperparameters = { n_estimators = 20, target = "species" }
    bad_hyperparameters = { n_estimators = "abc" }  # optional: one more failure path (T-16/T-17)
    metric_definitions = [{ Name = "accuracy", Regex = "accuracy=(\\S+)" }]   # optional (T-20)

    [training.sigterm]                              # T-21: make training run long enough to stop
    hyperparameters = { n_estimators = 5000 }
    repeat = 20                                     # optional: repeat CSV rows of each channel file
    delay = 1.0                                     # optional: seconds before SIGTERM (default: half a
                                                    # normal training run, at least 1 s)
    timeout = 30                                    # seconds allowed to exit after SIGTERM

    [[serving.payloads]]
    content_type = "text/csv"
    file = "../data/test_features.csv"              # or body = "..."
    records = 30                                    # expected number of output records
    header = "sepal_length,sepal_width,petal_length,petal_width"   # optional: the CSV header line (B-13)

Optional: ``instance_type = "ml.c7g.xlarge"`` (C-08), ``[serving] output_types`` (M-01),
``[training.checkpoint]`` (T-13) and ``[multi_model]`` (MM-11, MM-12); see conformance/README.md.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ManifestError(ValueError):
    """The manifest is malformed; the message names the key."""


@dataclass(frozen=True)
class Payload:
    content_type: str
    body: bytes
    records: int
    #: the header line of a CSV payload (its column names), when the image accepts headered CSV (B-13)
    header: bytes | None = None


@dataclass(frozen=True)
class SigtermSpec:
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    repeat: int = 1
    #: seconds from start to SIGTERM; ``None``: half of a normal training run, at least 1 s (T-21)
    delay: float | None = None
    timeout: float = 30.0


@dataclass(frozen=True)
class CheckpointSpec:
    """``[training.checkpoint]``: how the image shows that a restarted job resumed (T-13)."""

    #: a regular expression a line of the restarted job's log matches (and the first job's does not)
    resumed: str
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    repeat: int = 1
    #: seconds from start to SIGTERM in the first job (default: 3 s)
    delay: float = 3.0
    #: seconds allowed to exit after SIGTERM
    timeout: float = 30.0


@dataclass(frozen=True)
class MultiModel:
    """``[multi_model]``: the memory the 507 clauses give the container (MM-11, MM-12)."""

    #: ``docker run --memory`` of the container the memory clauses fill
    memory_mb: int = 1024
    #: each model copy loaded there is padded to weigh this much more (default: a quarter of memory_mb)
    model_pad_mb: int | None = None
    #: extra env in multi-model mode
    env: dict[str, str] = field(default_factory=dict)
    #: seconds one POST /models may take
    load_timeout: float = 120.0

    @property
    def pad_mb(self) -> int:
        return self.model_pad_mb if self.model_pad_mb is not None else max(1, self.memory_mb // 4)


@dataclass(frozen=True)
class Training:
    channels: dict[str, Path]
    hyperparameters: dict[str, Any]
    bad_hyperparameters: dict[str, Any] | None = None
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 600.0
    sigterm: SigtermSpec = field(default_factory=SigtermSpec)
    #: ``(Name, Regex)`` as in CreateTrainingJob's MetricDefinitions (T-20)
    metric_definitions: list[tuple[str, str]] = field(default_factory=list)
    #: None: the image does not claim to resume from checkpoints (T-13 skips)
    checkpoint: CheckpointSpec | None = None


@dataclass(frozen=True)
class Serving:
    payloads: list[Payload]
    env: dict[str, str] = field(default_factory=dict)
    ready_timeout: float = 240.0
    #: a body that must be rejected with 400 for each content type (defaults below)
    bad_payloads: dict[str, bytes] = field(default_factory=dict)
    #: media types the image answers with besides its payload types, for the next container of a chain (M-01)
    output_types: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Manifest:
    path: Path | None
    training: Training | None
    serving: Serving
    image: str | None = None
    expected_failures: Path | None = None
    toolkit_env_file: str | None = None
    #: the SageMaker instance type the image is meant for (C-08), e.g. ``ml.c7g.xlarge``
    instance_type: str | None = None
    multi_model: MultiModel = field(default_factory=MultiModel)

    def payload(self, content_type: str) -> Payload | None:
        return next((p for p in self.serving.payloads if p.content_type == content_type), None)

    @property
    def csv(self) -> Payload | None:
        return self.payload("text/csv")


DEFAULT_BAD = {
    "text/csv": b"1,2,3\nnot-a-number,x\n",
    "application/json": b'{"instances": [[1, 2',
    "application/jsonlines": b"[1, 2\n",
}


def _table(doc: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise ManifestError(f"{where}{key}: expected a table")
    return value


def _str_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ManifestError(f"{where}: expected a table")
    return {str(k): str(v) for k, v in value.items()}


def load(path: Path | str | None) -> Manifest:
    """Read a manifest; ``None`` gives an empty one (serving clauses need ``--model-dir``)."""
    if path is None:
        return Manifest(None, None, Serving(payloads=[]))
    path = Path(path).resolve()
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(f"{path}: {exc}") from exc
    base = path.parent

    def rel(p: str) -> Path:
        full = (base / p).resolve()
        if not full.exists():
            raise ManifestError(f"{path}: {p!r} does not exist (paths are relative to the manifest)")
        return full

    training = None
    tr = _table(doc, "training", "")
    if tr:
        channels = {str(k): rel(str(v)) for k, v in _table(tr, "channels", "training.").items()}
        if not channels:
            raise ManifestError("training.channels: at least one channel is needed")
        st = _table(tr, "sigterm", "training.")
        metrics = tr.get("metric_definitions", [])
        if not isinstance(metrics, list) or not all(isinstance(m, dict) and {"Name", "Regex"} <= set(m)
                                                     for m in metrics):
            raise ManifestError("training.metric_definitions: a list of { Name = \"...\", Regex = \"...\" }")
        bad = tr.get("bad_hyperparameters")
        ck = _table(tr, "checkpoint", "training.")
        checkpoint = None
        if ck:
            if not isinstance(ck.get("resumed"), str) or not ck["resumed"].strip():
                raise ManifestError("training.checkpoint.resumed: a regular expression matching the line your "
                                    "training logs when it starts from a checkpoint")
            checkpoint = CheckpointSpec(
                resumed=str(ck["resumed"]),
                hyperparameters=dict(_table(ck, "hyperparameters", "training.checkpoint.")),
                repeat=int(ck.get("repeat", 1)),
                delay=float(ck.get("delay", 3.0)),
                timeout=float(ck.get("timeout", 30.0)))
        training = Training(
            channels=channels,
            hyperparameters=dict(_table(tr, "hyperparameters", "training.")),
            bad_hyperparameters=dict(bad) if isinstance(bad, dict) else None,
            env=_str_map(tr.get("env", {}), "training.env"),
            timeout=float(tr.get("timeout", 600)),
            metric_definitions=[(str(m["Name"]), str(m["Regex"])) for m in metrics],
            sigterm=SigtermSpec(
                hyperparameters=dict(_table(st, "hyperparameters", "training.sigterm.")),
                repeat=int(st.get("repeat", 1)),
                delay=float(st["delay"]) if "delay" in st else None,
                timeout=float(st.get("timeout", 30.0)),
            ),
            checkpoint=checkpoint,
        )
    sv = _table(doc, "serving", "")
    payloads = []
    for i, p in enumerate(sv.get("payloads", [])):
        where = f"serving.payloads[{i}]"
        if not isinstance(p, dict) or "content_type" not in p or "records" not in p:
            raise ManifestError(f"{where}: needs content_type, records and file or body")
        if "file" in p:
            body = rel(str(p["file"])).read_bytes()
        elif "body" in p:
            body = str(p["body"]).encode()
        else:
            raise ManifestError(f"{where}: needs file or body")
        header = p.get("header")
        if header is not None and (not isinstance(header, str) or "\n" in header.strip() or not header.strip()):
            raise ManifestError(f"{where}.header: one CSV line, the payload's column names")
        payloads.append(Payload(str(p["content_type"]), body, int(p["records"]),
                                header.strip().encode() if isinstance(header, str) else None))
    bad = {str(k): str(v).encode() for k, v in _table(sv, "bad_payloads", "serving.").items()}
    outputs = sv.get("output_types", [])
    if not isinstance(outputs, list) or not all(isinstance(t, str) and "/" in t for t in outputs):
        raise ManifestError("serving.output_types: a list of media types, e.g. [\"application/json\"]")
    serving = Serving(
        payloads=payloads,
        env=_str_map(sv.get("env", {}), "serving.env"),
        ready_timeout=float(sv.get("ready_timeout", 240)),
        bad_payloads={**DEFAULT_BAD, **bad},
        output_types=[t.split(";")[0].strip().lower() for t in outputs],
    )
    mm = _table(doc, "multi_model", "")
    pad = mm.get("model_pad_mb")
    multi_model = MultiModel(memory_mb=int(mm.get("memory_mb", 1024)),
                             model_pad_mb=int(pad) if pad is not None else None,
                             env=_str_map(mm.get("env", {}), "multi_model.env"),
                             load_timeout=float(mm.get("load_timeout", 120)))
    if multi_model.memory_mb < 16 or multi_model.pad_mb < 1:
        raise ManifestError("multi_model.memory_mb: at least 16; model_pad_mb: at least 1")
    instance = doc.get("instance_type")
    if instance is not None and not isinstance(instance, str):
        raise ManifestError("instance_type: a SageMaker instance type, e.g. \"ml.m5.xlarge\"")
    ef = doc.get("expected_failures")
    expected = rel(str(ef)) if ef else (base / "expected-failures.toml")
    tk = _table(doc, "toolkit", "")
    return Manifest(
        path=path,
        training=training,
        serving=serving,
        image=doc.get("image"),
        expected_failures=expected if expected.exists() else None,
        toolkit_env_file=tk.get("env_file"),
        instance_type=instance,
        multi_model=multi_model,
    )


def load_expected_failures(path: Path | None) -> dict[str, str]:
    """``{clause: reason}`` from an expected-failures file::

        [expected-failures]
        "S-16" = "returns 500 for an unsupported Content-Type (inference-toolkit behaviour)"
    """
    if path is None:
        return {}
    try:
        doc = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(f"{path}: {exc}") from exc
    table = doc.get("expected-failures", {})
    if not isinstance(table, dict) or not all(isinstance(v, str) and v.strip() for v in table.values()):
        raise ManifestError(f"{path}: [expected-failures] maps clause IDs to a non-empty reason")
    return {str(k): str(v) for k, v in table.items()}
