"""``rosetta conform IMAGE``: check an image against the SageMaker contract from the outside."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rosetta_conformance.clauses import PROFILES, select
from rosetta_conformance.manifest import ManifestError, load, load_expected_failures
from rosetta_conformance.outcome import Result
from rosetta_conformance.report import STYLE, print_report, slug, write_reports
from rosetta_conformance.runner import run_suite


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("conform", help="check an image against the SageMaker container contract",
                              description=__doc__)
    p.add_argument("image", nargs="?", help="image to check, e.g. my-model:latest (default: the manifest's image)")
    p.add_argument("-m", "--manifest", type=Path, help="conformance.toml with data, hyperparameters, payloads")
    p.add_argument("--model-dir", type=Path, help="serve this model directory (no training needed)")
    p.add_argument("-p", "--profile", default="must",
                   help=f"comma-separated profiles: {', '.join(PROFILES)}, all (default: must)")
    p.add_argument("-c", "--clause", action="append", help="run only this clause (repeatable)")
    p.add_argument("-x", "--expected-failures", type=Path,
                   help="TOML of clauses known to fail (default: expected-failures.toml next to the manifest)")
    p.add_argument("-o", "--output", type=Path, default=Path("out/conformance"),
                   help="directory for the JUnit XML and Markdown reports (default: out/conformance)")
    p.add_argument("-j", "--jobs", type=int, default=4, help="checks run in parallel (default 4)")
    p.add_argument("--instance-type", help="the SageMaker instance type the image is for, e.g. ml.c7g.xlarge: its "
                                           "architecture must be the image's (C-08; default: the manifest's)")
    p.add_argument("--golden", nargs="?", const="auto", metavar="LANG",
                   help="instead: run the golden cases (conformance/golden) against IMAGE, a Rosetta runtime image, "
                        "with the LANG fixture programs (python, r, julia; default: from the image name)")
    p.add_argument("--golden-dir", type=Path, help="golden cases folder (default: conformance/golden of this checkout)")
    p.add_argument("--no-golden-training", dest="golden_training", action="store_false",
                   help="with --golden: only the serving cases (one training run per setup)")
    p.add_argument("--no-golden-multimodel", dest="golden_multimodel", action="store_false",
                   help="with --golden: without the multi-model cases (multimodel.json)")
    p.set_defaults(func=run)


def run_golden_cases(args: argparse.Namespace, console: Console) -> int:
    """``--golden``: the runtime contract's cases over HTTP, one result per case."""
    from rosetta_conformance.golden_images import RUNTIME_IMAGES, GoldenRun

    lang = RUNTIME_IMAGES.get(args.image or "") if args.golden == "auto" else args.golden
    if lang not in ("python", "r", "julia"):
        console.print("[bold red]error:[/] name the language of the golden programs: --golden python|r|julia")
        return 2
    extra = {"root": args.golden_dir.resolve()} if args.golden_dir else {}
    runner = GoldenRun(args.image, lang, jobs=max(1, min(args.jobs, 4)), training=args.golden_training,
                       multimodel=args.golden_multimodel, **extra)
    console.print(f"golden cases against {args.image} ({lang}): {len(runner.cases.cases)} serving, "
                  f"{len(runner.cases.multimodel) if args.golden_multimodel else 0} multi-model, "
                  f"{len(runner.cases.training) if args.golden_training else 0} training", soft_wrap=True)

    def line(r: Result) -> None:
        console.out(f"  {r.clause} {r.status.value}", highlight=False)

    report = runner.run(progress=line)
    print_report(report, console)
    xml_path, md_path = write_reports(report, args.output, stem=slug(args.image) + "-golden")
    console.print(f"reports: {xml_path}, {md_path}", soft_wrap=True)
    return report.exit_code


def run(args: argparse.Namespace) -> int:
    console = Console()
    if args.golden:
        if not args.image:
            console.print("[bold red]error:[/] name the runtime image: rosetta conform rosetta/python:latest --golden")
            return 2
        return run_golden_cases(args, console)
    try:
        manifest = load(args.manifest)
        expected = load_expected_failures(args.expected_failures or manifest.expected_failures)
        profiles = [s.strip() for s in args.profile.split(",") if s.strip()]
        total = len(select(profiles, args.clause))
    except (ManifestError, ValueError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 2
    image = args.image or manifest.image
    if not image:
        console.print("[bold red]error:[/] name the image, or set image = \"...\" in the manifest")
        return 2
    if manifest.training is None and args.model_dir is None:
        console.print("[yellow]no [training] in the manifest and no --model-dir: training and serving "
                      "clauses will be skipped[/]")
    model_dir = args.model_dir.resolve() if args.model_dir else None
    if console.is_terminal:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), TextColumn("{task.fields[last]}"), console=console, transient=True) as bar:
            task = bar.add_task(f"checking {image}", total=total, last="")

            def progress(r: Result) -> None:
                bar.update(task, advance=1, last=f"[{STYLE[r.status]}]{r.clause} {r.status.value}[/]")

            report = run_suite(image, manifest, profiles=profiles, only=args.clause, model_dir=model_dir,
                               expected=expected, jobs=args.jobs, progress=progress,
                               instance_type=args.instance_type)
    else:  # CI logs: one plain line per finished clause instead of a live bar
        done = iter(range(1, total + 1))
        console.out(f"checking {image}: {total} clauses", highlight=False)

        def line(r: Result) -> None:
            console.out(f"  [{next(done)}/{total}] {r.clause} {r.status.value} ({r.seconds:.1f} s)", highlight=False)

        report = run_suite(image, manifest, profiles=profiles, only=args.clause, model_dir=model_dir,
                           expected=expected, jobs=args.jobs, progress=line, instance_type=args.instance_type)
    print_report(report, console)
    xml_path, md_path = write_reports(report, args.output)
    console.print(f"reports: {xml_path}, {md_path}", soft_wrap=True)
    return report.exit_code
