"""A Training step: ``IMAGE train`` on a fake ``/opt/ml`` (T-01…T-17), model → ``model.tar.gz``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rosetta_orchestrator.local.container import run_job
from rosetta_orchestrator.local.context import JobContext, StepFailed
from sagemaker_rosetta.containers import ml_root, pack_model

_METRIC = re.compile(r"^#metric\s+([^=\s]+)=(\S+)")  # T-20


def run_training(ctx: JobContext, args: dict[str, Any]) -> dict[str, Any]:
    image = args["AlgorithmSpecification"]["TrainingImage"]
    hps = {k: str(v) for k, v in (args.get("HyperParameters") or {}).items()}  # T-02: strings
    channels: dict[str, Path | dict[str, str]] = {}
    content_types: dict[str, str | None] = {}
    for ch in args.get("InputDataConfig") or []:
        name = ch["ChannelName"]
        src = ctx.workdir / "channels" / name
        ctx.store.fetch(ch["DataSource"]["S3DataSource"]["S3Uri"], src)
        channels[name] = src
        content_types[name] = ch.get("ContentType")
    root = ml_root(ctx.workdir / "ml", hyperparameters=hps, channels={})
    _copy_channels(root, channels)
    entries = {}
    for name, ctype in content_types.items():  # T-04: one entry per channel, ContentType optional
        entry = {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
        if ctype:
            entry["ContentType"] = ctype
        entries[name] = entry
    (root / "input" / "config" / "inputdataconfig.json").write_text(json.dumps(entries))
    for p in [root, *root.rglob("*")]:
        p.chmod(0o777 if p.is_dir() else 0o666)

    metrics: dict[str, float] = {}

    def log(line: str) -> None:
        m = _METRIC.match(line)
        if m:
            try:
                metrics[m.group(1)] = float(m.group(2))
            except ValueError:
                pass
        ctx.log(line)

    max_runtime = (args.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    code = run_job(image, ["train"], label=ctx.step, log=log, env=args.get("Environment") or {},
                   volumes={root: "/opt/ml"}, timeout=float(max_runtime) if max_runtime else None)
    if code != 0:
        failure = root / "output" / "failure"
        text = failure.read_text(errors="replace") if failure.exists() else ""
        reason = text.strip().splitlines()[0] if text.strip() else "no /opt/ml/output/failure written"
        raise StepFailed(ctx.step, reason, exit_code=code, details=text)

    out_prefix = f"{str(args['OutputDataConfig']['S3OutputPath']).rstrip('/')}/{ctx.job_name}/output"
    model_tar = ctx.workdir / "model.tar.gz"
    pack_model(root / "model", model_tar)  # T-14: the model dir's contents, not the dir
    ctx.store.put_file(model_tar, f"{out_prefix}/model.tar.gz")
    if any((root / "output" / "data").iterdir()):  # T-15
        out_tar = ctx.workdir / "output.tar.gz"
        pack_model(root / "output" / "data", out_tar)
        ctx.store.put_file(out_tar, f"{out_prefix}/output.tar.gz")
    return {
        "TrainingJobName": ctx.job_name,
        "TrainingJobStatus": "Completed",
        "AlgorithmSpecification": args["AlgorithmSpecification"],
        "HyperParameters": hps,
        "ModelArtifacts": {"S3ModelArtifacts": f"{out_prefix}/model.tar.gz"},
        "OutputDataConfig": args["OutputDataConfig"],
        "FinalMetricDataList": [{"MetricName": k, "Value": v} for k, v in metrics.items()],
    }


def _copy_channels(root: Path, channels: dict[str, Path | dict[str, str]]) -> None:
    """Channel folders keep their sub-folders (S3Prefix keys), unlike ``ml_root``'s flat copy."""
    import shutil

    for name, src in channels.items():
        dst = root / "input" / "data" / name
        assert isinstance(src, Path)
        shutil.copytree(src, dst, dirs_exist_ok=True)


