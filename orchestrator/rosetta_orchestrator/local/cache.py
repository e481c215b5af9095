"""Step caching (``CacheConfig``): reuse a successful earlier run of a step with the same inputs.

SageMaker's cache key is a set of the step's request attributes ("Default cache key attributes by
pipeline step type"): Processing AppSpecification, Environment, ProcessingInputs; Training
AlgorithmSpecification, CheckpointConfig, DebugHookConfig, DebugRuleConfigurations, Environment,
HyperParameters, InputDataConfig; Transform DataProcessing, Environment, ModelName, TransformInput.
Output locations are not part of it, so a step whose outputs go to a per-execution prefix is still
found. Locally the key also holds what SageMaker assumes does not change under a URI: the engine's
image ID of every image the step runs and a digest of the content under every S3 input; for a
Transform, the model's container (image ID, model data digest, environment) stands for its
per-execution ModelName, and the batch settings and TransformOutput (less its S3OutputPath) are
included because they change the output. A hit also needs the earlier outputs to still exist.

Entries live in the store: ``s3://rosetta-local/cache/<pipeline>/<step>/<key>.json``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rosetta_orchestrator.local.store import Store, StoreError

ROOT = "s3://rosetta-local/cache"
KEY_ATTRIBUTES = {
    "Processing": ("AppSpecification", "Environment", "ProcessingInputs"),
    "Training": ("AlgorithmSpecification", "CheckpointConfig", "DebugHookConfig", "DebugRuleConfigurations",
                 "Environment", "HyperParameters", "InputDataConfig"),
    "Transform": ("DataProcessing", "Environment", "TransformInput", "BatchStrategy", "MaxPayloadInMB",
                  "MaxConcurrentTransforms"),
    "Tuning": ("HyperParameterTuningJobConfig", "TrainingJobDefinition", "TrainingJobDefinitions", "WarmStartConfig"),
}
_DURATION = re.compile(r"^P?(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$",
                       re.IGNORECASE)


class CacheConfigError(ValueError):
    pass


def parse_duration(text: str) -> dt.timedelta:
    """ISO-8601 duration as SageMaker takes it for ExpireAfter: ``P30D``, ``PT1H``, ``30d``, ``T16m``,
    ``P4DT12H`` (years count 365 days, months 30)."""
    m = _DURATION.match(text.strip())
    if not m or not any(m.groups()) or text.strip().upper().endswith("T"):
        raise CacheConfigError(f"ExpireAfter {text!r} is not an ISO-8601 duration (e.g. P30D, PT1H, T16m)")
    y, mo, w, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    return dt.timedelta(days=365 * y + 30 * mo + 7 * w + d, hours=h, minutes=mi, seconds=s)


@dataclass
class CacheSetting:
    enabled: bool
    expire_after: dt.timedelta | None

    @classmethod
    def of(cls, step: dict[str, Any]) -> CacheSetting:
        cfg = step.get("CacheConfig") or {}
        enabled = bool(cfg.get("Enabled")) and step.get("Type") in KEY_ATTRIBUTES
        expire = cfg.get("ExpireAfter")
        return cls(enabled, parse_duration(str(expire)) if enabled and expire else None)


def inputs_of(kind: str, args: dict[str, Any]) -> list[str]:
    """The S3 URIs a step reads (their content goes into the key)."""
    if kind == "Processing":
        return [str(i["S3Input"]["S3Uri"]) for i in args.get("ProcessingInputs") or [] if i.get("S3Input")]
    if kind == "Training":
        return [str(c["DataSource"]["S3DataSource"]["S3Uri"]) for c in args.get("InputDataConfig") or []
                if (c.get("DataSource") or {}).get("S3DataSource")]
    if kind == "Transform":
        return [str(args["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"])]
    if kind == "Tuning":
        return inputs_of("Training", args.get("TrainingJobDefinition") or {})
    return []


def outputs_of(kind: str, props: dict[str, Any]) -> list[str]:
    """What must still exist for a cached result to be reused."""
    if kind == "Training":
        return [str(props["ModelArtifacts"]["S3ModelArtifacts"])]
    if kind == "Processing":
        return [str(o["S3Output"]["S3Uri"]) for o in (props.get("ProcessingOutputConfig") or {}).get("Outputs") or []]
    if kind == "Transform":
        return [str(props["TransformOutput"]["S3OutputPath"])]
    if kind == "Tuning":
        return [str(j["ModelArtifacts"]["S3ModelArtifacts"]) for j in props.get("RosettaTrainingJobs") or []
                if j.get("ModelArtifacts")]
    return []


def key(kind: str, args: dict[str, Any], *, store: Store, image_id: Callable[[str], str],
        model: dict[str, Any] | None = None) -> str:
    """The cache key of a step's resolved arguments."""
    doc: dict[str, Any] = {"Type": kind}
    for attr in KEY_ATTRIBUTES[kind]:
        if attr in args:
            doc[attr] = args[attr]
    doc["inputs"] = {uri: store.digest(uri) for uri in inputs_of(kind, args)}
    images = []
    if kind == "Training":
        images.append(str(args["AlgorithmSpecification"]["TrainingImage"]))
    if kind == "Processing":
        images.append(str(args["AppSpecification"]["ImageUri"]))
    if kind == "Tuning":
        images.append(str(args["TrainingJobDefinition"]["AlgorithmSpecification"]["TrainingImage"]))
    if kind == "Transform":
        out = dict(args.get("TransformOutput") or {})
        out.pop("S3OutputPath", None)
        doc["TransformOutput"] = out
        container = dict(model or {})
        images.append(str(container.get("Image", "")))
        data = container.get("ModelDataUrl")
        doc["model"] = {"Environment": container.get("Environment") or {},
                        "ModelDataUrl": store.digest(str(data)) if data else None}
        for c in container.get("Containers") or []:  # an inference pipeline: every container counts
            images.append(str(c.get("Image", "")))
            doc["model"].setdefault("Containers", []).append({
                "Environment": c.get("Environment") or {}, "Hostname": c.get("ContainerHostname"),
                "ModelDataUrl": store.digest(str(c["ModelDataUrl"])) if c.get("ModelDataUrl") else None})
    doc["images"] = {i: image_id(i) for i in images}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _uri(pipeline: str, step: str, k: str) -> str:
    return f"{ROOT}/{pipeline}/{step}/{k}.json"


def lookup(store: Store, pipeline: str, step: str, k: str, setting: CacheSetting, kind: str,
           now: dt.datetime | None = None) -> tuple[dict[str, Any] | None, str]:
    """The entry to reuse, or None and why not (``miss``, ``expired …``, ``outputs gone …``)."""
    try:
        entry = json.loads(store.read_text(_uri(pipeline, step, k)))
    except (StoreError, ValueError):
        return None, "miss"
    created = dt.datetime.fromisoformat(entry["created"])
    now = now or dt.datetime.now(dt.UTC)
    if setting.expire_after is not None and created + setting.expire_after < now:
        return None, f"expired (cached {created:%Y-%m-%d %H:%M:%S} UTC, ExpireAfter {setting.expire_after})"
    missing = [u for u in outputs_of(kind, entry["properties"]) if not store.exists(u)]
    if missing:
        return None, f"outputs gone ({missing[0]})"
    return entry, "hit"


def save(store: Store, pipeline: str, step: str, k: str, execution_id: str, properties: dict[str, Any]) -> None:
    store.write_text(_uri(pipeline, step, k), json.dumps({
        "key": k, "execution_id": execution_id, "created": dt.datetime.now(dt.UTC).isoformat(),
        "properties": properties}, indent=2, default=str))


def cache_uri(pipeline: str, step: str, k: str) -> str:
    return _uri(pipeline, step, k)
