"""``rosetta init python|r|julia DIR``: start a model project that passes ``rosetta conform`` unedited."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from sagemaker_rosetta.scaffold.languages import LANGUAGES, TASKS
from sagemaker_rosetta.scaffold.project import ScaffoldError, init_project


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("init", help="start a model project (Dockerfile, model, manifest, data, CI)",
                              description=__doc__)
    p.add_argument("language", choices=list(LANGUAGES), help="the model's language")
    p.add_argument("dir", type=Path, help="folder to create (must be empty or missing unless --force)")
    p.add_argument("--task", choices=TASKS, default="classification",
                   help="what the sample model learns (default: classification)")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty folder (the project's files are overwritten, others kept)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    try:
        project = init_project(args.language, args.dir, task=args.task, force=args.force)
    except ScaffoldError as exc:
        Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return 2
    console.print(f"created a {LANGUAGES[args.language].title} {args.task} project in {escape(str(project.root))} "
                  f"(image {project.image}):", soft_wrap=True)
    for path in project.files:
        console.print(f"  {path.relative_to(project.root)}", markup=False)
    console.print("next:")
    for cmd in project.next_commands():
        console.print(f"  {cmd}", markup=False, soft_wrap=True)
    return 0
