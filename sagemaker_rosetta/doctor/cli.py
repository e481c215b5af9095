"""``rosetta doctor IMAGE | FOLDER | --endpoint NAME``: what is wrong, in SageMaker's terms, and what to do.

One line per finding: the clause it breaks (docs/contract.md), what goes wrong on SageMaker, what was
seen, and the fix. Exit 0 when nothing is wrong, 1 with findings, 2 on bad usage.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from sagemaker_rosetta.doctor.findings import is_plain, render
from sagemaker_rosetta.doctor.image import QUICK, Diagnosis


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("doctor", help="explain what is wrong with an image, a failed job or run, or an "
                              "endpoint, in SageMaker's terms", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", nargs="?", metavar="IMAGE|FOLDER",
                   help="an image on the local engine, or the folder of a failed job (rosetta train --output) or "
                        "pipeline run (its execution folder or --workdir)")
    p.add_argument("--endpoint", metavar="NAME", help="instead: a running local endpoint (rosetta endpoint up)")
    p.add_argument("-m", "--manifest", type=Path,
                   help="the image's conformance.toml (training data, payloads): also runs `train` and `serve`")
    p.add_argument("--model-dir", type=Path, help="serve this model directory (no training needed)")
    p.add_argument("--instance-type", help="the SageMaker instance type the image is for (C-08)")
    p.add_argument("--deep", action="store_true",
                   help=f"every clause the conformance suite checks, not only the short list ({', '.join(QUICK)})")
    p.add_argument("--state", type=Path, help=argparse.SUPPRESS)  # the endpoints' state folder (tests)
    p.set_defaults(func=run)


def _consoles() -> tuple[Console, Console]:
    out, err = Console(highlight=False), Console(stderr=True, highlight=False)
    if is_plain(out):  # CI logs, pipes: full width, nothing cut or wrapped
        out = Console(soft_wrap=True, width=100_000, highlight=False, no_color=True)
        err = Console(stderr=True, soft_wrap=True, width=100_000, highlight=False, no_color=True)
    return out, err


def fail(err: Console, message: str) -> int:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return 2


def run(args: argparse.Namespace) -> int:
    out, err = _consoles()
    if bool(args.target) == bool(args.endpoint):
        return fail(err, "give one thing to examine: an IMAGE, a job or run FOLDER, or --endpoint NAME")
    if args.endpoint and (args.manifest or args.model_dir or args.deep):
        return fail(err, "-m, --model-dir and --deep apply to an image, not to --endpoint")
    for opt, path in (("-m", args.manifest), ("--model-dir", args.model_dir)):
        if path is not None and not path.exists():
            return fail(err, f"{opt} {path}: no such file or folder")
    try:
        diagnosis = _diagnose(args, err)
    except ValueError as exc:  # FolderError, EndpointError, ManifestError, a bad --instance-type…
        return fail(err, str(exc).strip().splitlines()[0])
    for note in diagnosis.notes:
        err.print(f"note: {escape(note)}", soft_wrap=True)
    render(diagnosis.findings, out, diagnosis.subject)
    return diagnosis.exit_code


def _diagnose(args: argparse.Namespace, err: Console) -> Diagnosis:
    if args.endpoint:
        from sagemaker_rosetta.doctor.endpoint import diagnose_endpoint

        return diagnose_endpoint(args.endpoint, state_root=args.state)
    target = str(args.target)
    if Path(target).is_dir():
        if args.manifest or args.model_dir or args.deep:
            raise ValueError("-m, --model-dir and --deep apply to an image, not to a folder")
        from sagemaker_rosetta.doctor.folder import diagnose_folder

        return diagnose_folder(Path(target))
    from sagemaker_rosetta import local_images
    from sagemaker_rosetta.doctor.image import diagnose_image

    if not local_images.exists(target):
        raise ValueError(f"{target} is neither a folder nor an image on the local engine (which never pulls): "
                         "build it or docker pull it first")
    err.print(f"examining {escape(target)}: a look inside, then "
              f"{'every conformance clause' if args.deep else ', '.join(QUICK)}", soft_wrap=True)
    return diagnose_image(target, manifest=args.manifest, model_dir=args.model_dir,
                          instance_type=args.instance_type, profiles=["all"] if args.deep else None)
