"""``rosetta pipeline definition|upsert|start|run|graph FILE``.

FILE is a Python file defining ``def pipeline() -> rosetta_orchestrator.Pipeline`` (or a
module-level ``pipeline``); it may also define ``report(result, console)`` to print its own
summary after a local run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from rich.console import Console

console = Console(stderr=True)


def _say(msg: str) -> None:
    console.print(f"[bold cyan]rosetta[/] {msg}")


def _quiet_sdk() -> None:
    """The SDK logs INFO about configs and 'created' models while it merely builds arguments."""
    warnings.filterwarnings("ignore", message="Running within a PipelineSession")
    for name in [*logging.root.manager.loggerDict, "sagemaker", "botocore", "boto3"]:
        if name.split(".")[0] in ("sagemaker", "botocore", "boto3"):
            logging.getLogger(name).setLevel(logging.ERROR)


def _load(args: argparse.Namespace) -> Any:
    from rosetta_orchestrator.loader import load_module

    _quiet_sdk()
    logging.disable(logging.INFO)  # the SDK sets its own logger levels while building steps
    try:
        return load_module(args.file)
    finally:
        logging.disable(logging.NOTSET)


def _params(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--param expects NAME=VALUE, got {item!r}")
        out[key] = value
    return out


def cmd_definition(args: argparse.Namespace) -> int:
    pipeline, _ = _load(args)
    text = pipeline.definition()
    if args.output:
        Path(args.output).write_text(json.dumps(json.loads(text), indent=2) + "\n")
        _say(f"wrote {args.output}")
    else:
        print(json.dumps(json.loads(text), indent=2))
    return 0


def cmd_upsert(args: argparse.Namespace) -> int:
    from rosetta_orchestrator import aws

    pipeline, _ = _load(args)
    aws.upsert(pipeline, role=args.role, region=args.region, endpoint_url=args.endpoint_url,
               s3_endpoint_url=args.s3_endpoint_url, upload=not args.no_upload, say=_say)
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    from rosetta_orchestrator import aws

    pipeline, _ = _load(args)
    if args.upsert:
        aws.upsert(pipeline, role=args.role, region=args.region, endpoint_url=args.endpoint_url,
                   s3_endpoint_url=args.s3_endpoint_url, say=_say)
    arn = aws.start(pipeline, parameters=_params(args.param), region=args.region,
                    endpoint_url=args.endpoint_url, say=_say)
    print(arn)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if not args.local:
        console.print("[red]error:[/] `run` executes locally: add --local (use `start` to run on SageMaker)")
        return 2
    from rosetta_orchestrator.local.run import MissingImages, run_file

    pipeline, module = _load(args)
    try:
        result = run_file(pipeline, module, parameters=_params(args.param), store_dir=Path(args.store),
                          workdir=Path(args.workdir), s3_endpoint_url=args.s3_endpoint_url,
                          max_parallel=args.parallel, console=console)
    except (MissingImages, ValueError) as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; the run's containers were removed[/]")
        return 130
    return 0 if result.status == "Succeeded" else 1


def cmd_graph(args: argparse.Namespace) -> int:
    from rosetta_orchestrator import graph

    pipeline, _ = _load(args)
    definition = pipeline.definition_dict()
    print(graph.mermaid(definition, pipeline.runtimes()), end="")
    if args.output:
        try:
            graph.render(graph.dot(definition, pipeline.runtimes()), Path(args.output))
        except (FileNotFoundError, ValueError) as exc:
            console.print(f"[red]error:[/] {exc}")
            return 2
        _say(f"wrote {args.output}")
    return 0


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("pipeline", help="mixed-language SageMaker Pipelines: definition, AWS, local run")
    sub = p.add_subparsers(dest="pipeline_command", required=True, metavar="ACTION")

    def with_file(name: str, help_text: str) -> argparse.ArgumentParser:
        q: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        q.add_argument("file", help="pipeline file defining pipeline() (see orchestrator/README.md)")
        return q

    def with_aws(q: argparse.ArgumentParser) -> None:
        q.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION"))
        q.add_argument("--role", help="execution role ARN (default: the pipeline's role)")
        q.add_argument("--endpoint-url", help="SageMaker endpoint (e.g. a moto server); default AWS")
        q.add_argument("--s3-endpoint-url", help="S3 endpoint for uploading code and data")

    q = with_file("definition", "print the SageMaker pipeline definition JSON (no network)")
    q.add_argument("-o", "--output", help="write to this file instead of stdout")
    q.set_defaults(func=cmd_definition)

    q = with_file("upsert", "create or update the pipeline on SageMaker (uploads code/data assets)")
    with_aws(q)
    q.add_argument("--no-upload", action="store_true", help="do not upload the pipeline's assets")
    q.set_defaults(func=cmd_upsert)

    q = with_file("start", "start an execution on SageMaker")
    with_aws(q)
    q.add_argument("--upsert", action="store_true", help="upsert first")
    q.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    q.set_defaults(func=cmd_start)

    q = with_file("run", "run the same definition locally with Docker (--local)")
    q.add_argument("--local", action="store_true", help="run on this machine's Docker engine")
    q.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    q.add_argument("--store", default=".rosetta-run/s3", help="folder standing in for S3 (s3://b/k → STORE/b/k)")
    q.add_argument("--s3-endpoint-url", help="use an S3-compatible endpoint instead of --store")
    q.add_argument("--workdir", default=".rosetta-run/runs", help="per-execution work folders")
    q.add_argument("--parallel", type=int, default=4, help="steps running at once (default 4)")
    q.set_defaults(func=cmd_run)

    q = with_file("graph", "draw the DAG: Mermaid on stdout; -o FILE.svg/.png with Graphviz")
    q.add_argument("-o", "--output", help="also render SVG/PNG with Graphviz dot")
    q.set_defaults(func=cmd_graph)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rosetta")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
