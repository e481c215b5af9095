"""``rosetta``: set up the engine, build runtime images, check conformance, run pipelines."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape

from sagemaker_rosetta import engine, images
from sagemaker_rosetta.dockerapi import DockerError
from sagemaker_rosetta.registry import PushError

console = Console(stderr=True)

#: subcommands contributed by the other packages: module exposing ``add_parser(subparsers)``
PLUGINS = ("rosetta_conformance.cli", "rosetta_orchestrator.cli", "sagemaker_rosetta.scaffold.cli",
           "sagemaker_rosetta.endpoint.cli", "sagemaker_rosetta.doctor.cli")


def say(msg: str) -> None:
    console.print(f"[bold cyan]rosetta[/] {msg}")


def cmd_setup(args: argparse.Namespace) -> int:
    engine.ensure_engine(say)
    engine.ensure_base_images(say=say)
    if args.images:
        images.build(args.images, say, with_bases=False)
    if args.examples:
        wanted = [n for n, spec in images.EXAMPLES.items() if spec.runtime in args.images]
        images.build_examples(wanted, say)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    names = list(images.IMAGES) if args.names == ["all"] else args.names
    images.build(names, say)
    if args.push:
        from sagemaker_rosetta.registry import push_images

        push_images([images.IMAGES[n].tag for n in names], args.push, say)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rosetta", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("setup", help="start a Docker engine, seed base images, build runtime images")
    p.add_argument("--images", nargs="*", default=list(images.IMAGES), choices=list(images.IMAGES),
                   help="runtime images to build (default: all; `--images` alone: none, only engine and bases)")
    p.add_argument("--examples", action="store_true", help="also build the example images (examples/iris/*)")
    p.set_defaults(func=cmd_setup)

    p = sub.add_parser("build", help="build runtime base images (python, r, r-rpy2, julia, or all)")
    p.add_argument("names", nargs="+", choices=[*images.IMAGES, "all"])
    p.add_argument("--push", metavar="REPOSITORY", help="also tag and push to this registry/ECR repository")
    p.set_defaults(func=cmd_build)

    for module in PLUGINS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        mod.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (engine.EngineError, DockerError, PushError, images.BuildError) as exc:
        first, _, rest = str(exc).strip().partition("\n")
        console.print(f"[bold red]error:[/] {escape(first or type(exc).__name__)}", soft_wrap=True)
        if rest:  # an engine's or a build's log tail: context after the one error line
            console.print(rest, markup=False, highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        from sagemaker_rosetta.containers import cleanup_all

        cleanup_all()
        console.print("[yellow]interrupted; containers removed[/]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
