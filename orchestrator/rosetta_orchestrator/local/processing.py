"""A Processing step: inputs copied to their ``LocalPath``, outputs collected from theirs."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from rosetta_orchestrator.local.container import run_job
from rosetta_orchestrator.local.context import JobContext, StepFailed, exit_failure

BASE = "/opt/ml/processing/"


def run_processing(ctx: JobContext, args: dict[str, Any], property_files: list[dict[str, Any]]) -> dict[str, Any]:
    app = args["AppSpecification"]
    image = app["ImageUri"]
    entry = [str(a) for a in app.get("ContainerEntrypoint") or []]
    arguments = [str(a) for a in app.get("ContainerArguments") or []]
    volumes: dict[Path, str] = {}
    for sub in ("inputs", "outputs", "ml-output"):
        shutil.rmtree(ctx.workdir / sub, ignore_errors=True)
    for i, inp in enumerate(args.get("ProcessingInputs") or []):
        s3 = inp.get("S3Input")
        if not s3:
            raise StepFailed(ctx.step, f"input {inp.get('InputName')}: only S3Input is supported locally")
        host = ctx.workdir / "inputs" / f"{i}-{inp['InputName']}"
        ctx.store.fetch(s3["S3Uri"], host)
        volumes[host] = _local_path(ctx, s3["LocalPath"])
    outputs = (args.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    for i, out in enumerate(outputs):
        host = ctx.workdir / "outputs" / f"{i}-{out['OutputName']}"
        host.mkdir(parents=True, exist_ok=True)
        host.chmod(0o777)
        volumes[host] = _local_path(ctx, out["S3Output"]["LocalPath"])
    config = ctx.workdir / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "processingjobconfig.json").write_text(json.dumps({**args, "ProcessingJobName": ctx.job_name}))
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}))
    volumes[config] = "/opt/ml/config"
    output = ctx.workdir / "ml-output"  # a failure reason, if the script writes one (T-17 style)
    output.mkdir(parents=True, exist_ok=True)
    output.chmod(0o777)
    volumes[output] = "/opt/ml/output"
    tail: list[str] = []

    def log(line: str) -> None:
        if line.strip():
            tail[:] = [*tail[-4:], line.strip()]
        ctx.log(line)

    max_runtime = (args.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    t0 = time.monotonic()
    code = run_job(image, [*entry[1:], *arguments], label=ctx.step, log=log,
                   entrypoint=entry[0] if entry else None, env=args.get("Environment") or {},
                   volumes=volumes, timeout=float(max_runtime) if max_runtime else None)
    if code != 0:
        files = [output / "failure", output / "message"]
        text = next((f.read_text(errors="replace") for f in files if f.is_file()), "")
        internal = exit_failure(ctx.step, code, time.monotonic() - t0,
                                float(max_runtime) if max_runtime else None, tail[-1] if tail else "")
        if internal and not text.strip():
            raise internal
        reason = (text.strip().splitlines()[0] if text.strip()
                  else tail[-1] if tail else f"processing container exited with {code}")
        raise StepFailed(ctx.step, reason, exit_code=code, details=text)

    described = []
    for i, out in enumerate(outputs):
        ctx.store.put_dir(ctx.workdir / "outputs" / f"{i}-{out['OutputName']}", out["S3Output"]["S3Uri"])
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
