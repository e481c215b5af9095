"""``rosetta pipeline definition|upsert|start|run|graph FILE``, ``rosetta models …`` and ``rosetta train``.

FILE is a Rosetta pipeline file (``def pipeline() -> rosetta_orchestrator.Pipeline``), any Python
file whose ``pipeline`` is a SageMaker SDK ``Pipeline``, or a definition JSON (also
``describe-pipeline-definition`` output). A Python file may define ``report(result, console)`` to
print its own summary after a local run. ``definition``, ``run`` and ``graph`` reuse a Python file's
earlier build from the definition cache (:mod:`rosetta_orchestrator.defcache`) while nothing it read
changed; ``--no-cache`` builds again.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from rosetta_orchestrator.ui import is_plain, make_console

console: Console = make_console()


def _say(msg: str) -> None:
    console.print(f"[bold cyan]rosetta[/] {msg}", highlight=False)


def _quiet_sdk() -> None:
    """The SDK logs INFO about configs and 'created' models while it merely builds arguments."""
    warnings.filterwarnings("ignore", message="Running within a PipelineSession")
    for name in [*logging.root.manager.loggerDict, "sagemaker", "botocore", "boto3"]:
        if name.split(".")[0] in ("sagemaker", "botocore", "boto3"):
            logging.getLogger(name).setLevel(logging.ERROR)


def _load(args: argparse.Namespace, *, for_aws: bool = False) -> Any:
    from rosetta_orchestrator.defcache import DefinitionCache
    from rosetta_orchestrator.loader import load_source
    from rosetta_orchestrator.sdk import LOCAL_ACCOUNT

    _quiet_sdk()
    account: str | Callable[[], str] = LOCAL_ACCOUNT
    cache = None
    if for_aws:  # the SDK's default bucket is per account: asked (STS) only if the SDK needs it
        from rosetta_orchestrator import aws

        account = functools.partial(aws.account_id, args.region, args.endpoint_url)
    else:
        cache = DefinitionCache.default()
    logging.disable(logging.INFO)  # the SDK sets its own logger levels while building steps
    try:
        source = load_source(args.file, account=account, name=getattr(args, "name", None),
                             role=getattr(args, "role", None), cache=cache, refresh=getattr(args, "no_cache", False))
    finally:
        logging.disable(logging.NOTSET)
    if source.cached_build:
        _say(f"definition: the build of {source.cached_build} (nothing it read has changed; --no-cache builds "
             "again)")
    elif source.cache_miss and source.cache_miss != "no earlier build of this content":
        _say(f"definition: built again ({source.cache_miss})")
    return source


def _params(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--param expects NAME=VALUE, got {item!r}")
        out[key] = value
    return out


def cmd_definition(args: argparse.Namespace) -> int:
    source = _load(args)
    text = json.dumps(source.definition, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n")
        _say(f"wrote {args.output}")
    else:
        print(text)
    return 0


def cmd_upsert(args: argparse.Namespace) -> int:
    from rosetta_orchestrator import aws
    from rosetta_orchestrator.local.run import parse_uploads

    source = _load(args, for_aws=True)
    source.assets.update(parse_uploads(args.upload))
    aws.upsert(source, role=args.role, region=args.region, endpoint_url=args.endpoint_url,
               s3_endpoint_url=args.s3_endpoint_url, upload=not args.no_upload, say=_say)
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    from rosetta_orchestrator import aws

    source = _load(args, for_aws=True)
    if args.upsert:
        aws.upsert(source, role=args.role, region=args.region, endpoint_url=args.endpoint_url,
                   s3_endpoint_url=args.s3_endpoint_url, say=_say)
    arn = aws.start(source, parameters=_params(args.param), region=args.region, endpoint_url=args.endpoint_url,
                    say=_say)
    print(arn)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from rosetta_orchestrator.local.run import parse_uploads, run_file

    source = _load(args)
    try:
        result = run_file(source, parameters=_params(args.param), store_dir=Path(args.store),
                          workdir=Path(args.workdir), s3_endpoint_url=args.s3_endpoint_url,
                          max_parallel=args.parallel, console=console, plain=is_plain(console),
                          use_cache=not args.no_cache, resume=args.resume, uploads=parse_uploads(args.upload))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; the run's containers were removed[/]")
        return 130
    if result.definition_errors:
        for s in result.definition_errors:
            console.print(f"[red]error:[/] step {s.name}: {s.reason}", highlight=False)
        return 2
    return 0 if result.status == "Succeeded" else 1


def cmd_graph(args: argparse.Namespace) -> int:
    from rosetta_orchestrator import graph

    source = _load(args)
    print(graph.mermaid(source.definition, source.runtimes), end="")
    if args.output:
        graph.render(graph.dot(source.definition, source.runtimes), Path(args.output))
        _say(f"wrote {args.output}")
    return 0


# -- rosetta models ----------------------------------------------------------------------------
def _registry(args: argparse.Namespace) -> Any:
    from rosetta_orchestrator.local.registry import Registry
    from rosetta_orchestrator.local.run import make_store

    return Registry(make_store(Path(args.store), args.s3_endpoint_url))


def cmd_models_list(args: argparse.Namespace) -> int:
    from rosetta_orchestrator.ui import table

    reg = _registry(args)
    if args.group:
        rows = [(str(v["ModelPackageVersion"]), v["ModelApprovalStatus"], v["CreationTime"][:19],
                 str(v.get("RegisteredBy", {}).get("execution_id", "")), v["ModelPackageArn"])
                for v in reg.versions(args.group)]
        table(console, f"model package group {args.group}", ("version", "status", "created", "execution", "arn"),
              rows, plain=is_plain(console), right=("version",))
        return 0
    rows = []
    for g in reg.groups():
        versions = reg.versions(g["ModelPackageGroupName"])
        latest = versions[-1] if versions else {}
        rows.append((g["ModelPackageGroupName"], str(len(versions)), str(latest.get("ModelPackageVersion", "")),
                     str(latest.get("ModelApprovalStatus", "")),
                     str(sum(v["ModelApprovalStatus"] == "Approved" for v in versions))))
    table(console, f"model registry in {reg.store.describe()}", ("group", "versions", "latest", "latest status",
                                                                 "approved"), rows, plain=is_plain(console))
    return 0


def cmd_models_describe(args: argparse.Namespace) -> int:
    print(json.dumps(_registry(args).describe(args.package), indent=2))
    return 0


def _set_status(status: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        doc = _registry(args).set_status(args.package, status, args.description or "")
        _say(f"{doc['ModelPackageGroupName']} version {doc['ModelPackageVersion']}: {doc['ModelApprovalStatus']}")
        return 0
    return run


# -- parsers -----------------------------------------------------------------------------------
def _store_options(q: argparse.ArgumentParser) -> None:
    q.add_argument("--store", default=".rosetta-run/s3", help="folder standing in for S3 (s3://b/k → STORE/b/k)")
    q.add_argument("--s3-endpoint-url", help="use an S3-compatible endpoint instead of --store")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("pipeline", help="SageMaker Pipelines: definition, AWS, local run")
    sub = p.add_subparsers(dest="pipeline_command", required=True, metavar="ACTION")

    def with_file(name: str, help_text: str) -> argparse.ArgumentParser:
        q: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        q.add_argument("file", help="a Rosetta pipeline file, an SDK pipeline file, or a definition JSON")
        q.add_argument("--name", help="pipeline name (default: the pipeline's own, or the JSON file's stem)")
        q.add_argument("--debug", action="store_true", help="show tracebacks of errors")
        return q

    def with_aws(q: argparse.ArgumentParser) -> None:
        q.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION"))
        q.add_argument("--role", help="execution role ARN (default: the pipeline's role)")
        q.add_argument("--endpoint-url", help="SageMaker endpoint (e.g. a moto server); default AWS")
        q.add_argument("--s3-endpoint-url", help="S3 endpoint for uploading code and data")

    def with_build_cache(q: argparse.ArgumentParser) -> None:
        q.add_argument("--no-cache", action="store_true",
                       help="build the definition again instead of reusing the cached build")

    q = with_file("definition", "print the SageMaker pipeline definition JSON (no network)")
    q.add_argument("-o", "--output", help="write to this file instead of stdout")
    with_build_cache(q)
    q.set_defaults(func=guarded(cmd_definition))

    q = with_file("upsert", "create or update the pipeline on SageMaker (uploads code/data assets)")
    with_aws(q)
    q.add_argument("--no-upload", action="store_true", help="do not upload the pipeline's assets")
    q.add_argument("--upload", action="append", default=[], metavar="LOCAL=s3://BUCKET/KEY",
                   help="also upload this file or folder first")
    q.set_defaults(func=guarded(cmd_upsert))

    q = with_file("start", "start an execution on SageMaker")
    with_aws(q)
    q.add_argument("--upsert", action="store_true", help="upsert first")
    q.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    q.set_defaults(func=guarded(cmd_start))

    q = with_file("run", "run the definition locally with Docker")
    q.add_argument("--local", action="store_true", help="accepted for compatibility: run always runs locally")
    q.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    _store_options(q)
    q.add_argument("--upload", action="append", default=[], metavar="LOCAL=s3://BUCKET/KEY",
                   help="put this file or folder into the store before the run (repeatable)")
    q.add_argument("--workdir", default=".rosetta-run/runs", help="per-execution work folders")
    q.add_argument("--parallel", type=int, default=4, help="steps running at once (default 4)")
    q.add_argument("--no-cache", action="store_true",
                   help="ignore CacheConfig (run every step) and build the definition again")
    q.add_argument("--resume", metavar="EXECUTION_ID",
                   help="re-run only the failed and not-started steps of that execution (same --workdir)")
    q.set_defaults(func=guarded(cmd_run))

    q = with_file("graph", "draw the DAG: Mermaid on stdout; -o FILE.svg/.png with Graphviz")
    q.add_argument("-o", "--output", help="also render SVG/PNG with Graphviz dot")
    with_build_cache(q)
    q.set_defaults(func=guarded(cmd_graph))

    m = subparsers.add_parser("models", help="the local model registry (RegisterModel steps of local runs)")
    msub = m.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    q = msub.add_parser("list", help="model package groups, or the versions of one group")
    q.add_argument("group", nargs="?")
    q.set_defaults(func=guarded(cmd_models_list))
    q = msub.add_parser("describe", help="one version as JSON (ARN or GROUP/VERSION)")
    q.add_argument("package")
    q.set_defaults(func=guarded(cmd_models_describe))
    for action, status in (("approve", "Approved"), ("reject", "Rejected")):
        q = msub.add_parser(action, help=f"set a version's ModelApprovalStatus to {status}")
        q.add_argument("package", help="ARN or GROUP/VERSION")
        q.add_argument("--description", help="ApprovalDescription")
        q.set_defaults(func=guarded(_set_status(status)))
    for q in msub.choices.values():
        _store_options(q)
        q.add_argument("--debug", action="store_true", help="show tracebacks of errors")

    from rosetta_orchestrator import train_cli

    train_cli.add_parser(subparsers, console, guarded)


def guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``fn`` with the errors a user can act on shown as one ``error:`` line, exit code 2 (the
    ``rosetta`` entry point calls ``args.func`` directly, so the handling lives here)."""
    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        return run_command(fn, args)
    return run


def run_command(fn: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    from rosetta_orchestrator.aws import PlaceholderRole
    from rosetta_orchestrator.loader import LoadError
    from rosetta_orchestrator.local.plan import DefinitionError
    from rosetta_orchestrator.local.precheck import PrecheckFailed
    from rosetta_orchestrator.local.registry import RegistryError
    from rosetta_orchestrator.local.store import StoreError

    try:
        return int(fn(args))
    except (LoadError, DefinitionError, PrecheckFailed, RegistryError, StoreError, PlaceholderRole, ValueError,
            FileNotFoundError) as exc:
        if getattr(args, "debug", False):
            traceback.print_exception(exc.__cause__ or exc, file=sys.stderr)
        console.print(f"[red]error:[/] {exc}", highlight=False)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rosetta")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
