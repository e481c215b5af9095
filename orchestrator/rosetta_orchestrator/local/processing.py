"""A Processing step: inputs copied to their ``LocalPath``, outputs collected from theirs."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from rosetta_orchestrator.local import hosts
from rosetta_orchestrator.local.container import run_hosts, run_job
from rosetta_orchestrator.local.context import JobContext, StepFailed, exit_failure

BASE = "/opt/ml/processing/"


def run_processing(ctx: JobContext, args: dict[str, Any], property_files: list[dict[str, Any]]) -> dict[str, Any]:
    """One processing job on ``ProcessingResources.ClusterConfig.InstanceCount`` hosts: each S3
    input copied to every host (``FullyReplicated``) or one shard each (``ShardedByS3Key``, see
    :mod:`.hosts`), every host's outputs merged into each output's S3Uri."""
    app = args["AppSpecification"]
    image = app["ImageUri"]
    entry = [str(a) for a in app.get("ContainerEntrypoint") or []]
    arguments = [str(a) for a in app.get("ContainerArguments") or []]
    cluster = (args.get("ProcessingResources") or {}).get("ClusterConfig") or {}
    names = hosts.names(int(cluster.get("InstanceCount") or 1))
    instance_type = str(cluster.get("InstanceType") or "ml.m5.large")
    multi = len(names) > 1
    for sub in ("inputs", "outputs", "ml-output", "config", "hosts", "merged"):
        shutil.rmtree(ctx.workdir / sub, ignore_errors=True)
    base = {h: (ctx.workdir / "hosts" / h) if multi else ctx.workdir for h in names}
    volumes: dict[str, dict[Path, str]] = {h: {} for h in names}
    for i, inp in enumerate(args.get("ProcessingInputs") or []):
        s3 = inp.get("S3Input")
        if not s3:
            raise StepFailed(ctx.step, f"input {inp.get('InputName')}: only S3Input is supported locally")
        folders = {h: base[h] / "inputs" / f"{i}-{inp['InputName']}" for h in names}
        sharded = s3.get("S3DataDistributionType") == "ShardedByS3Key"
        hosts.distribute(ctx.store, s3["S3Uri"], sharded, list(folders.values()), ctx.log,
                         f"input {inp['InputName']}")
        for h in names:
            volumes[h][folders[h]] = _local_path(ctx, s3["LocalPath"])
    outputs = (args.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    for h in names:
        for i, out in enumerate(outputs):
            host_out = base[h] / "outputs" / f"{i}-{out['OutputName']}"
            host_out.mkdir(parents=True, exist_ok=True)
            host_out.chmod(0o777)
            volumes[h][host_out] = _local_path(ctx, out["S3Output"]["LocalPath"])
        config = base[h] / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "processingjobconfig.json").write_text(json.dumps({**args, "ProcessingJobName": ctx.job_name}))
        (config / "resourceconfig.json").write_text(json.dumps(hosts.resource_config(h, names, instance_type)))
        volumes[h][config] = "/opt/ml/config"
        output = base[h] / "ml-output"  # a failure reason, if the script writes one (T-17 style)
        output.mkdir(parents=True, exist_ok=True)
        output.chmod(0o777)
        volumes[h][output] = "/opt/ml/output"
    tails: dict[str, list[str]] = {h: [] for h in names}

    def log(host: str, line: str) -> None:
        if line.strip():
            tails[host][:] = [*tails[host][-4:], line.strip()]
        ctx.log(f"[{host}] {line}" if multi else line)

    max_runtime = (args.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    timeout = float(max_runtime) if max_runtime else None
    t0 = time.monotonic()
    command = [*entry[1:], *arguments]
    entrypoint = entry[0] if entry else None
    env = args.get("Environment") or {}
    if multi:
        codes = run_hosts(image, command, names, label=ctx.step, log=log, entrypoint=entrypoint, env=env,
                          volumes=volumes, timeout=timeout)
    else:
        codes = {names[0]: run_job(image, command, label=ctx.step, log=lambda line: log(names[0], line),
                                   entrypoint=entrypoint, env=env, volumes=volumes[names[0]], timeout=timeout,
                                       hostname=names[0])}
    failed = next((h for h, c in codes.items() if c != 0), None)
    if failed is not None:
        code = codes[failed]
        tail = tails.get(failed) or []
        files = [base[failed] / "ml-output" / "failure", base[failed] / "ml-output" / "message"]
        text = next((f.read_text(errors="replace") for f in files if f.is_file()), "")
        where = f"{failed}: " if multi else ""
        internal = exit_failure(ctx.step, code, time.monotonic() - t0, timeout, tail[-1] if tail else "")
        if internal and not text.strip():
            internal.reason = where + internal.reason
            raise internal
        reason = (text.strip().splitlines()[0] if text.strip()
                  else tail[-1] if tail else f"processing container exited with {code}")
        raise StepFailed(ctx.step, where + reason, exit_code=code, details=text)

    described = []
    for i, out in enumerate(outputs):
        folder = f"{i}-{out['OutputName']}"
        source = base[names[0]] / "outputs" / folder
        if multi:  # every host uploads to the same S3Uri: merged in host order (see hosts.merge)
            source = ctx.workdir / "merged" / folder
            hosts.merge([(h, base[h] / "outputs" / folder) for h in names], source, ctx.log,
                        f"output {out['OutputName']}")
        ctx.store.put_dir(source, out["S3Output"]["S3Uri"])
        described.append(out)
    props: dict[str, Any] = {
        "ProcessingJobName": ctx.job_name,
        "ProcessingJobStatus": "Completed",
        "AppSpecification": app,
        "ProcessingOutputConfig": {"Outputs": described},
        "PropertyFiles": {},
    }
    by_name = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in outputs}
    for pf in property_files:
        if pf["OutputName"] not in by_name:
            raise StepFailed(ctx.step, f"property file {pf['PropertyFileName']} names output {pf['OutputName']!r}, "
                                       f"which the step does not have (outputs: {', '.join(by_name) or 'none'})")
        uri = str(by_name[pf["OutputName"]]).rstrip("/") + "/" + pf["FilePath"].lstrip("/")
        props["PropertyFiles"][pf["PropertyFileName"]] = {"S3Uri": uri, "OutputName": pf["OutputName"],
                                                          "FilePath": pf["FilePath"]}
    return props


def _local_path(ctx: JobContext, path: str) -> str:
    if not path.startswith(BASE):
        raise StepFailed(ctx.step, f"LocalPath {path!r} must be under {BASE}")
    return path
