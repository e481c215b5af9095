"""A Training step: ``IMAGE train`` on a fake ``/opt/ml`` (T-01…T-17), model → ``model.tar.gz``."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

from rosetta_orchestrator.local.container import run_job
from rosetta_orchestrator.local.context import JobContext, StepFailed, exit_failure
from sagemaker_rosetta.containers import ml_root, pack_model

#: the runtimes' metric line (T-20); only used to point at a metric that no definition declares
_METRIC_LINE = re.compile(r"^#metric\s+([^=\s]+)=(\S+)")


class MetricScanner:
    """FinalMetricDataList as SageMaker computes it: each ``MetricDefinitions`` regex is searched in
    every line of the job's output, its first group parsed as a number, the last value kept. A
    metric that no definition matches is not reported (a note says how to declare it)."""

    def __init__(self, step: str, definitions: list[dict[str, Any]]) -> None:
        self.patterns: list[tuple[str, re.Pattern[str]]] = []
        for d in definitions:
            try:
                self.patterns.append((str(d["Name"]), re.compile(str(d["Regex"]))))
            except (KeyError, re.error) as exc:
                raise StepFailed(step, f"MetricDefinitions entry {d!r} is not usable: {exc}") from None
        self.values: dict[str, tuple[float, str]] = {}
        self.undeclared: list[str] = []

    def scan(self, line: str) -> None:
        matched = False
        for name, pattern in self.patterns:
            m = pattern.search(line)
            if m and m.groups():
                try:
                    self.values[name] = (float(m.group(1)), dt.datetime.now(dt.UTC).isoformat())
                    matched = True
                except ValueError:
                    pass
        m = _METRIC_LINE.match(line)
        if m and not matched and m.group(1) not in self.undeclared:
            self.undeclared.append(m.group(1))

    def final(self) -> list[dict[str, Any]]:
        return [{"MetricName": k, "Value": v, "Timestamp": t} for k, (v, t) in self.values.items()]


def run_training(ctx: JobContext, args: dict[str, Any]) -> dict[str, Any]:
    image = args["AlgorithmSpecification"]["TrainingImage"]
    hps = {k: str(v) for k, v in (args.get("HyperParameters") or {}).items()}  # T-02: strings
    channels: dict[str, Path | dict[str, str]] = {}
    for sub in ("ml", "channels"):  # a retry starts from a fresh /opt/ml
        shutil.rmtree(ctx.workdir / sub, ignore_errors=True)
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

    metrics = MetricScanner(ctx.step, list(args["AlgorithmSpecification"].get("MetricDefinitions") or []))
    tail: list[str] = []

    def log(line: str) -> None:
        metrics.scan(line)
        if line.strip():
            tail[:] = [*tail[-2:], line.strip()]
        ctx.log(line)

    max_runtime = (args.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    t0 = time.monotonic()
    code = run_job(image, ["train"], label=ctx.step, log=log, env=args.get("Environment") or {},
                   volumes={root: "/opt/ml"}, timeout=float(max_runtime) if max_runtime else None)
    for name in metrics.undeclared:
        ctx.log(f"[rosetta] metric {name!r} was printed but no MetricDefinitions entry matches it, so "
                f"SageMaker would not report it: declare it (p.training(metrics=[{name!r}]) or a "
                "MetricDefinition)")
    if code != 0:
        failure = root / "output" / "failure"
        text = failure.read_text(errors="replace") if failure.exists() else ""
        internal = exit_failure(ctx.step, code, time.monotonic() - t0,
                                float(max_runtime) if max_runtime else None, tail[-1] if tail else "")
        if internal and not text.strip():
            raise internal
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
        "FinalMetricDataList": metrics.final(),
    }


def _copy_channels(root: Path, channels: dict[str, Path | dict[str, str]]) -> None:
    """Channel folders keep their sub-folders (S3Prefix keys), unlike ``ml_root``'s flat copy."""
    for name, src in channels.items():
        dst = root / "input" / "data" / name
        assert isinstance(src, Path)
        shutil.copytree(src, dst, dirs_exist_ok=True)


