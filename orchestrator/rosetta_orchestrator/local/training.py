"""A Training step: ``IMAGE train`` on a fake ``/opt/ml`` per host (T-01…T-17), model → ``model.tar.gz``."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any, NoReturn

from rosetta_orchestrator.local import hosts
from rosetta_orchestrator.local.checkpoints import Checkpoints
from rosetta_orchestrator.local.container import run_hosts, run_job
from rosetta_orchestrator.local.context import JobContext, StepFailed, exit_failure
from rosetta_orchestrator.local.store import StoreError
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
    """One training job: ``ResourceConfig.InstanceCount`` hosts (see :mod:`.hosts`), channels
    ``FullyReplicated`` or ``ShardedByS3Key``, ``CheckpointConfig`` (see :mod:`.checkpoints`)."""
    image = args["AlgorithmSpecification"]["TrainingImage"]
    hps = {k: str(v) for k, v in (args.get("HyperParameters") or {}).items()}  # T-02: strings
    resources = args.get("ResourceConfig") or {}
    names = hosts.names(int(resources.get("InstanceCount") or 1))
    instance_type = str(resources.get("InstanceType") or "ml.m5.large")
    multi = len(names) > 1
    for sub in ("ml", "channels", "hosts", "checkpoints", "merged"):  # a retry starts from a fresh /opt/ml
        shutil.rmtree(ctx.workdir / sub, ignore_errors=True)
    roots = {h: ml_root((ctx.workdir / "hosts" / h) if multi else (ctx.workdir / "ml"), hyperparameters=hps,
                        channels={}, hosts=names, current_host=h) for h in names}
    entries = {}
    default_mode = args["AlgorithmSpecification"].get("TrainingInputMode") or "File"
    for ch in args.get("InputDataConfig") or []:
        name = ch["ChannelName"]
        source = ch["DataSource"]["S3DataSource"]
        distribution = str(source.get("S3DataDistributionType") or "FullyReplicated")
        hosts.distribute(ctx.store, source["S3Uri"], distribution == "ShardedByS3Key",
                         [roots[h] / "input" / "data" / name for h in names], ctx.log, f"channel {name}")
        # T-04: one entry per channel, ContentType optional
        entry = {"TrainingInputMode": ch.get("InputMode") or default_mode, "S3DistributionType": distribution,
                 "RecordWrapperType": ch.get("RecordWrapperType") or "None"}
        if ch.get("ContentType"):
            entry["ContentType"] = ch["ContentType"]
        entries[name] = entry
    checkpoints = Checkpoints.of(args)
    folders = {h: ctx.workdir / "checkpoints" / h for h in names}
    volumes: dict[str, dict[Path, str]] = {h: {roots[h]: "/opt/ml"} for h in names}
    for h, root in roots.items():
        config = root / "input" / "config"
        (config / "inputdataconfig.json").write_text(json.dumps(entries))
        (config / "resourceconfig.json").write_text(json.dumps(hosts.resource_config(h, names, instance_type)))
        if checkpoints:
            (config / "checkpointconfig.json").write_text(checkpoints.config())
            volumes[h][folders[h]] = checkpoints.local_path
        for p in [root, *root.rglob("*")]:
            p.chmod(0o777 if p.is_dir() else 0o666)
    if checkpoints:
        checkpoints.restore(ctx.store, list(folders.values()), ctx.log)

    metrics = MetricScanner(ctx.step, list(args["AlgorithmSpecification"].get("MetricDefinitions") or []))
    tails: dict[str, list[str]] = {h: [] for h in names}

    def log(host: str, line: str) -> None:
        metrics.scan(line)  # every host's output, as SageMaker searches each instance's log
        if line.strip():
            tails[host][:] = [*tails[host][-2:], line.strip()]
        ctx.log(f"[{host}] {line}" if multi else line)

    max_runtime = (args.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    timeout = float(max_runtime) if max_runtime else None
    env = args.get("Environment") or {}
    t0 = time.monotonic()
    try:
        if multi:
            codes = run_hosts(image, ["train"], names, label=ctx.step, log=log, env=env, volumes=volumes,
                              timeout=timeout)
        else:
            codes = {names[0]: run_job(image, ["train"], label=ctx.step, log=lambda line: log(names[0], line),
                                       env=env, volumes=volumes[names[0]], timeout=timeout,
                                       hostname=names[0])}
    finally:
        if checkpoints:
            try:  # on success, failure and stop alike: the next attempt resumes from it
                checkpoints.persist(ctx.store, [(h, folders[h]) for h in names], ctx.workdir / "merged" / "ckpt",
                                    ctx.log)
            except (StoreError, OSError) as exc:
                ctx.log(f"[rosetta] could not save the checkpoints to {checkpoints.s3_uri}: {exc}")
    for name in metrics.undeclared:
        ctx.log(f"[rosetta] metric {name!r} was printed but no MetricDefinitions entry matches it, so "
                f"SageMaker would not report it: declare it (p.training(metrics=[{name!r}]) or a "
                "MetricDefinition)")
    failed = next((h for h, c in codes.items() if c != 0), None)
    if failed is not None:
        _raise_failure(ctx, failed, codes[failed], roots.get(failed), tails.get(failed) or [],
                       time.monotonic() - t0, timeout, multi)

    out_prefix = f"{str(args['OutputDataConfig']['S3OutputPath']).rstrip('/')}/{ctx.job_name}/output"
    model_tar = ctx.workdir / "model.tar.gz"
    model_dir, data_dir = roots[names[0]] / "model", roots[names[0]] / "output" / "data"
    if multi:  # every host's model and output data, merged in host order (see hosts.merge)
        model_dir, data_dir = ctx.workdir / "merged" / "model", ctx.workdir / "merged" / "data"
        hosts.merge([(h, roots[h] / "model") for h in names], model_dir, ctx.log, "model")
        hosts.merge([(h, roots[h] / "output" / "data") for h in names], data_dir, ctx.log, "output data")
    pack_model(model_dir, model_tar)  # T-14: the model dir's contents, not the dir
    ctx.store.put_file(model_tar, f"{out_prefix}/model.tar.gz")
    if any(data_dir.iterdir()):  # T-15
        out_tar = ctx.workdir / "output.tar.gz"
        pack_model(data_dir, out_tar)
        ctx.store.put_file(out_tar, f"{out_prefix}/output.tar.gz")
    props = {
        "TrainingJobName": ctx.job_name,
        "TrainingJobStatus": "Completed",
        "AlgorithmSpecification": args["AlgorithmSpecification"],
        "HyperParameters": hps,
        "ModelArtifacts": {"S3ModelArtifacts": f"{out_prefix}/model.tar.gz"},
        "OutputDataConfig": args["OutputDataConfig"],
        "ResourceConfig": resources,
        "FinalMetricDataList": metrics.final(),
    }
    if checkpoints:
        props["CheckpointConfig"] = {"S3Uri": checkpoints.s3_uri, "LocalPath": checkpoints.local_path}
    return props


def _raise_failure(ctx: JobContext, host: str, code: int, root: Path | None, tail: list[str], seconds: float,
                   max_runtime: float | None, multi: bool) -> NoReturn:
    """The job's failure from its first failing host: the failure file's first line (T-17), else an
    internal fault (the engine, a kill from outside) or the stop at MaxRuntimeInSeconds."""
    failure = root / "output" / "failure" if root else None
    text = failure.read_text(errors="replace") if failure and failure.exists() else ""
    internal = exit_failure(ctx.step, code, seconds, max_runtime, tail[-1] if tail else "")
    where = f"{host}: " if multi else ""
    if internal and not text.strip():
        internal.reason = where + internal.reason
        raise internal
    reason = text.strip().splitlines()[0] if text.strip() else "no /opt/ml/output/failure written"
    raise StepFailed(ctx.step, where + reason, exit_code=code, details=text)
