"""Reports: a rich terminal table, JUnit XML (for CI) and Markdown (for humans and PRs)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rosetta_conformance.outcome import Result, Status
from rosetta_conformance.runner import Report

STYLE = {Status.PASS: "green", Status.FAIL: "bold red", Status.BLOCKED: "red", Status.SKIP: "dim",
         Status.XFAIL: "yellow", Status.XPASS: "bold yellow", Status.INCONCLUSIVE: "bold magenta"}


#: reported as "skipped" in JUnit: neither passed nor failed
UNDECIDED = (Status.SKIP, Status.XFAIL, Status.INCONCLUSIVE)


def describe(r: Result) -> str:
    """The one-line story of a result: why, blocked by what, expected because."""
    parts = []
    if r.blocked_by:
        parts.append(f"blocked by {r.blocked_by}")
    if r.detail:
        parts.append(r.detail.splitlines()[0])
    if r.reason:
        parts.append(f"expected failure: {r.reason}" + (" — now passes, remove it from the list"
                                                        if r.status is Status.XPASS else ""))
    return "; ".join(parts)


def summary(report: Report) -> str:
    counts = {s: len(report.by_status(s)) for s in Status}
    shown = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
    verdict = "CONFORMS" if report.ok else "DOES NOT CONFORM"
    return f"{report.image}: {verdict} ({shown}) in {report.seconds:.1f} s"


def table(report: Report) -> Table:
    """One line per clause (full sent/received text is in the Markdown and JUnit reports)."""
    t = Table(title=f"SageMaker contract — {report.image} (profile: {', '.join(report.profiles)})", expand=True)
    t.add_column("clause", no_wrap=True)
    t.add_column("result", no_wrap=True)
    t.add_column("s", justify="right", no_wrap=True)
    t.add_column("rule", ratio=3, no_wrap=True, overflow="ellipsis")
    t.add_column("sent", ratio=2, no_wrap=True, overflow="ellipsis")
    t.add_column("received / notes", ratio=4, no_wrap=True, overflow="ellipsis")
    for r in report.results:
        note = describe(r)
        got = escape(r.received)
        t.add_row(r.clause, f"[{STYLE[r.status]}]{r.status.value.upper()}[/]", f"{r.seconds:.1f}", escape(r.title),
                  escape(r.sent), f"[{STYLE[r.status]}]{escape(note)}[/] {got}" if note else got)
    return t


def plain(report: Report) -> list[str]:
    """The table as plain full-width lines, nothing cut (CI logs: stdout is not a terminal)."""
    lines = [f"SageMaker contract — {report.image} (profile: {', '.join(report.profiles)})",
             f"{'clause':<7} {'result':<12} {'s':>6}  rule | sent | received / notes"]
    for r in report.results:
        note = describe(r)
        got = f"{note}; {r.received}" if note and r.received else note or r.received
        lines.append(f"{r.clause:<7} {r.status.value.upper():<12} {r.seconds:>6.1f}  "
                     f"{r.title} | {r.sent or '-'} | {(got or '-').replace(chr(10), ' ')}")
    return lines


def print_report(report: Report, console: Console | None = None) -> None:
    console = console or Console()
    if not console.is_terminal:
        # rich would fit the table to 80 columns and drop the notes: write every line in full
        for line in plain(report):
            console.out(line, highlight=False)
    else:
        console.print(table(report))
    for name, value in sorted(report.figures.items()):
        console.print(f"  {name}: {value:.2f}", soft_wrap=True)
    for r in report.results:
        if r.status is Status.INCONCLUSIVE:  # the whole note: it ends with the manifest lines to add
            console.print(f"[{STYLE[r.status]}]{r.clause} inconclusive:[/] {escape(r.detail)}", soft_wrap=True,
                          highlight=False)
    xpass = report.by_status(Status.XPASS)
    if xpass:
        console.print(f"[bold yellow]now passing, remove from expected failures:[/] {', '.join(xpass)}",
                      soft_wrap=True)
    console.print(f"[{'green' if report.ok else 'bold red'}]{summary(report)}[/]", soft_wrap=True)


def junit_xml(report: Report) -> str:
    suite = ET.Element("testsuite", name=f"sagemaker-contract[{report.image}]", tests=str(len(report.results)),
                       failures=str(sum(r.status in (Status.FAIL, Status.BLOCKED) for r in report.results)),
                       skipped=str(sum(r.status in UNDECIDED for r in report.results)),
                       time=f"{report.seconds:.3f}")
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="image", value=report.image)
    ET.SubElement(props, "property", name="profiles", value=",".join(report.profiles))
    for name, value in report.figures.items():
        ET.SubElement(props, "property", name=name, value=f"{value:.3f}")
    for r in report.results:
        case = ET.SubElement(suite, "testcase", classname=f"sagemaker_contract.{r.profile}",
                             name=f"{r.clause} {r.title}", time=f"{r.seconds:.3f}")
        body = f"source: {r.source}\nsent: {r.sent}\nreceived: {r.received}\n{r.detail}"
        if r.status in (Status.FAIL, Status.BLOCKED):
            el = ET.SubElement(case, "failure", message=describe(r)[:500] or r.status.value)
            el.text = body
        elif r.status in UNDECIDED:
            el = ET.SubElement(case, "skipped", message=describe(r)[:500] or "skipped")
        ET.SubElement(case, "system-out").text = body
    return ET.tostring(suite, encoding="unicode")


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(report: Report) -> str:
    lines = [f"# SageMaker contract conformance: `{report.image}`", "",
             f"**{summary(report)}** — profile {', '.join(report.profiles)}"
             + (f", manifest `{report.manifest}`" if report.manifest else ""), ""]
    if report.figures:
        lines += [", ".join(f"{k} = {v:.2f}" for k, v in sorted(report.figures.items())), ""]
    lines += ["| clause | result | rule (source) | sent | received | notes |", "|---|---|---|---|---|---|"]
    for r in report.results:
        lines.append(f"| {r.clause} | {r.status.value.upper()} | {_md(r.title)} ({_md(r.source)}) | "
                     f"{_md(r.sent)} | {_md(r.received)} | {_md(describe(r))} |")
    for r in report.results:
        if r.status is Status.INCONCLUSIVE:
            lines += ["", f"**{r.clause} inconclusive**", "", "```", r.detail, "```"]
    return "\n".join(lines) + "\n"


def slug(image: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", image).strip("_")


def write_reports(report: Report, outdir: Path | str, stem: str | None = None) -> tuple[Path, Path]:
    """Write ``<stem>.xml`` (JUnit) and ``<stem>.md`` into ``outdir``; return both paths."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    stem = stem or slug(report.image)
    xml_path, md_path = out / f"{stem}.xml", out / f"{stem}.md"
    xml_path.write_text(junit_xml(report))
    md_path.write_text(markdown(report))
    return xml_path, md_path
