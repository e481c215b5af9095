"""``rosetta pipeline run``: stage inputs, check everything the run needs, run, report."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console

from rosetta_orchestrator.api import Pipeline
from rosetta_orchestrator.loader import Source
from rosetta_orchestrator.local.container import image_present
from rosetta_orchestrator.local.declarations import declaration
from rosetta_orchestrator.local.plan import build_plan
from rosetta_orchestrator.local.precheck import PrecheckFailed, check
from rosetta_orchestrator.local.registry import Registry
from rosetta_orchestrator.local.runner import LocalRunner, Reporter, RunResult, coerce_parameters, load_execution
from rosetta_orchestrator.local.store import LocalStore, S3Store, Store, StoreError, split_uri, stage_assets

#: kept for callers of the former API: the pre-run check raises this for missing images too
MissingImages = PrecheckFailed


def parse_uploads(items: list[str], base: Path | None = None) -> dict[str, Path]:
    """``--upload LOCAL=s3://bucket/key`` → {URI: path}; a URI ending in ``/`` takes the file's name."""
    out: dict[str, Path] = {}
    for item in items or []:
        local, sep, uri = item.partition("=")
        if not sep or not uri.startswith("s3://"):
            raise ValueError(f"--upload expects LOCAL=s3://bucket/key, got {item!r}")
        path = ((base or Path.cwd()) / local).resolve()
        if not path.exists():
            raise ValueError(f"--upload {item}: {path} does not exist")
        split_uri(uri)
        if uri.endswith("/") and path.is_file():
            uri += path.name
        out[uri.rstrip("/") if path.is_dir() else uri] = path
    return out


def as_source(pipeline: Pipeline | Source) -> Source:
    if isinstance(pipeline, Source):
        return pipeline
    return Source(Path.cwd(), "rosetta", pipeline.name, pipeline.definition_dict(), dict(pipeline.assets),
                  pipeline.runtimes(), pipeline=pipeline, description=pipeline.description, role=pipeline.role)


def execute(pipeline: Pipeline | Source, *, store: Store, workdir: Path, parameters: Mapping[str, str] | None = None,
            reporter: Reporter | None = None, max_parallel: int = 4, use_cache: bool = True,
            resume: str | None = None, uploads: Mapping[str, Path] | None = None,
            warn: Callable[[str], None] | None = None) -> RunResult:
    """Run a pipeline locally (no UI): the API the CLI, tests and benchmarks use.

    Raises :class:`~rosetta_orchestrator.local.plan.DefinitionError` for a definition that cannot
    run, ``ValueError`` for bad parameters, :class:`PrecheckFailed` listing every missing S3 input
    and image; none of them starts a container.
    """
    source = as_source(pipeline)
    plan = build_plan(source.definition)
    saved = load_execution(workdir, resume) if resume else None
    values = (dict(saved.get("parameters") or {}) if saved
              else coerce_parameters(plan.parameters, dict(parameters or {})))
    stage_assets(store, {**source.assets, **dict(uploads or {})})
    registry = Registry(store)
    findings = check(plan, values, store, registry, image_present, declaration)
    for line in findings.warnings:
        (warn or (lambda _: None))(f"warning: {line}")
    if findings.blocking:
        raise PrecheckFailed(findings)
    runner = LocalRunner(source.definition, store=store, workdir=workdir, pipeline_name=source.name,
                         parameters=parameters, reporter=reporter, max_parallel=max_parallel,
                         use_cache=use_cache, resume=saved)
    return runner.run()


def make_store(store_dir: Path, s3_endpoint_url: str | None) -> Store:
    return S3Store(s3_endpoint_url) if s3_endpoint_url else LocalStore(store_dir)


def run_file(source: Source, *, parameters: dict[str, str], store_dir: Path, workdir: Path,
             s3_endpoint_url: str | None, max_parallel: int, console: Console, plain: bool,
             use_cache: bool = True, resume: str | None = None,
             uploads: Mapping[str, Path] | None = None) -> RunResult:
    from rosetta_orchestrator.ui import RichReporter, summary

    store = make_store(store_dir, s3_endpoint_url)
    with RichReporter(console, source.runtimes, plain=plain) as reporter:
        result = execute(source, store=store, workdir=workdir.resolve(), parameters=parameters, reporter=reporter,
                         max_parallel=max_parallel, use_cache=use_cache, resume=resume, uploads=uploads,
                         warn=lambda line: console.print(f"[yellow]{line}[/]"))
    summary(console, result, source.runtimes, plain=plain)
    report = getattr(source.module, "report", None) if source.module else None
    deliberate = all(s.type == "Fail" for s in result.failed)  # the run reached a Fail gate, nothing broke
    if callable(report) and (result.status == "Succeeded" or deliberate):
        try:
            report(result, console)
        except (StoreError, OSError, KeyError, ValueError, TypeError) as exc:
            console.print(f"[yellow]warning:[/] {source.path.name}: report() failed: {type(exc).__name__}: {exc}")
    return result


def describe_outputs(result: RunResult) -> dict[str, Any]:
    """Where each transform's ``.out`` files are (store paths or URIs)."""
    out: dict[str, Any] = {}
    for s in result.steps.values():
        if s.type == "Transform" and s.status == "Succeeded":
            uri = str(s.properties["TransformOutput"]["S3OutputPath"])
            out[s.name] = result.store.location(uri)
    return out
