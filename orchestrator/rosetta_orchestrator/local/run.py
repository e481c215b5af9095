"""``rosetta pipeline run --local``: stage assets, check images, run, report."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

from rich.console import Console

from rosetta_orchestrator.api import Pipeline
from rosetta_orchestrator.local.container import image_present
from rosetta_orchestrator.local.runner import LocalRunner, Reporter, RunResult, coerce_parameters
from rosetta_orchestrator.local.store import LocalStore, S3Store, Store, stage_assets
from rosetta_orchestrator.ui import RichReporter, summary


class MissingImages(RuntimeError):
    pass


def images_needed(definition: dict[str, Any], parameters: dict[str, Any]) -> set[str]:
    """Every image named in the definition (parameters resolved) that a local run would start."""
    found: set[str] = set()
    for s in definition.get("Steps") or []:
        a = s.get("Arguments") or {}
        candidates = [(a.get("AlgorithmSpecification") or {}).get("TrainingImage"),
                      (a.get("AppSpecification") or {}).get("ImageUri"),
                      (a.get("PrimaryContainer") or {}).get("Image")]
        for c in candidates:
            if isinstance(c, dict) and str(c.get("Get", "")).startswith("Parameters."):
                c = parameters.get(str(c["Get"]).split(".", 1)[1])
            if isinstance(c, str) and c:
                found.add(c)
    return found


def check_images(definition: dict[str, Any], parameters: dict[str, Any]) -> None:
    missing = sorted(i for i in images_needed(definition, parameters) if not image_present(i))
    if missing:
        raise MissingImages("image(s) not on the local engine (the local runner never pulls): "
                            + ", ".join(missing) + " — build them (rosetta build …) or docker tag them")


def execute(pipeline: Pipeline, *, store: Store, workdir: Path, parameters: dict[str, str] | None = None,
            reporter: Reporter | None = None, max_parallel: int = 4) -> RunResult:
    """Run a pipeline locally (no UI): the API the tests and benchmarks use."""
    definition = pipeline.definition_dict()
    check_images(definition, coerce_parameters(list(definition.get("Parameters") or []), parameters or {}))
    stage_assets(store, pipeline.assets)
    runner = LocalRunner(definition, store=store, workdir=workdir, pipeline_name=pipeline.name,
                         parameters=parameters, reporter=reporter, max_parallel=max_parallel)
    return runner.run()


def run_file(pipeline: Pipeline, module: ModuleType, *, parameters: dict[str, str], store_dir: Path,
             workdir: Path, s3_endpoint_url: str | None, max_parallel: int, console: Console) -> RunResult:
    store: Store = S3Store(s3_endpoint_url) if s3_endpoint_url else LocalStore(store_dir)
    runtimes = pipeline.runtimes()
    with RichReporter(console, runtimes) as reporter:
        result = execute(pipeline, store=store, workdir=workdir.resolve(), parameters=parameters,
                         reporter=reporter, max_parallel=max_parallel)
    summary(console, result, runtimes, workdir.resolve())
    report = getattr(module, "report", None)
    if callable(report) and result.status == "Succeeded":
        report(result, console)
    (workdir / result.execution_id).mkdir(parents=True, exist_ok=True)
    (workdir / result.execution_id / "result.json").write_text(json.dumps({
        "status": result.status, "seconds": result.seconds, "parameters": result.parameters,
        "steps": {n: {"status": s.status, "seconds": s.seconds, "image": s.image, "reason": s.reason,
                      "exit_code": s.exit_code, "properties": s.properties} for n, s in result.steps.items()},
    }, indent=2, default=str))
    return result
