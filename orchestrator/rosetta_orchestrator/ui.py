"""What the user sees during a local run: prefixed container logs, live progress, a clear summary.

On a terminal: colours, a spinner per running step, a table. When stdout or stderr is not a
terminal (CI logs, ``| tee``, a file): plain text at full width, nothing cut and no column dropped.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from rosetta_orchestrator.local.runner import RunResult, StepResult

COLORS = ("cyan", "magenta", "green", "yellow", "blue", "bright_red", "bright_cyan", "bright_magenta")


def is_plain(console: Console) -> bool:
    """Plain full-width output unless both stdout and the console's stream are terminals."""
    return not (sys.stdout.isatty() and console.is_terminal)


def make_console() -> Console:
    """The CLI's console (stderr): never wraps or cuts lines when the output is not a terminal."""
    probe = Console(stderr=True)
    if is_plain(probe):
        return Console(stderr=True, soft_wrap=True, width=100_000, highlight=False, no_color=True)
    return probe


def status_text(s: StepResult, *, short: bool = False) -> str:
    """A step's status in words; ``short`` for the table (the long forms go below it)."""
    if s.status == "Succeeded" and s.cached_from:
        return "cached" if short else f"cached ({s.cached_from})"
    if s.status == "Succeeded" and s.reused_from:
        return "reused" if short else f"reused ({s.reused_from})"
    if s.status == "NotRun":
        return "not run" if short else (s.reason or "not run")
    if s.status == "NotStarted":
        return "not started"
    text = s.status
    if s.attempts > 1:
        text += f" after {s.attempts} attempts"
    return text


def _style(text: str) -> str:
    if text.startswith("Failed"):
        return f"[bold red]{escape(text)}[/]"
    if text.startswith(("not ", "cached", "reused")):
        return f"[dim]{escape(text)}[/]"
    if text.startswith("Succeeded"):
        return f"[green]{escape(text)}[/]"
    return escape(text)


class RichReporter:
    """Streams ``[Step] line`` for every container line and a spinner per running step."""

    def __init__(self, console: Console, runtimes: dict[str, str] | None = None, *, plain: bool = False) -> None:
        self.console = console
        self.runtimes = runtimes or {}
        self.plain = plain
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                 console=console, transient=True, disable=plain)
        self.tasks: dict[str, TaskID] = {}
        self.colors: dict[str, str] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _color(self, step: str) -> str:
        if step not in self.colors:
            self.colors[step] = COLORS[len(self.colors) % len(COLORS)]
        return self.colors[step]

    def started(self, step: StepResult) -> None:
        with self._lock:
            runtime = self.runtimes.get(step.name, "")
            self.tasks[step.name] = self.progress.add_task(
                f"[{self._color(step.name)}]{step.name}[/] {step.type} {escape(step.image)} "
                f"[dim]{runtime}[/]", total=None)
            image = f", {escape(step.image)}" if step.image else ""
            self.console.print(f"[{self._color(step.name)}]▶ {step.name}[/] started ({step.type}{image})",
                               highlight=False)

    def log(self, step: str, line: str) -> None:
        with self._lock:
            self.console.print(f"[{self._color(step)}]\\[{step}][/] {escape(line)}", highlight=False,
                               soft_wrap=True)

    def finished(self, step: StepResult) -> None:
        with self._lock:
            if step.name in self.tasks:
                self.progress.remove_task(self.tasks.pop(step.name))
            mark = {"Succeeded": "✔", "Failed": "✘"}.get(step.status, "○")
            took = f" in {step.seconds:.1f} s" if step.status in ("Succeeded", "Failed") and step.seconds else ""
            reason = f": {escape(step.reason)}" if step.reason and step.status == "Failed" else ""
            self.console.print(f"[{self._color(step.name)}]{mark} {step.name}[/] {_style(status_text(step))}"
                               f"{took}{reason}", highlight=False, soft_wrap=True)


def table(console: Console, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *,
          plain: bool, right: Sequence[str] = ()) -> None:
    """A table: rich on a terminal (only the last column may be cut), aligned plain text otherwise."""
    if plain:
        widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(c.rjust(w) if columns[i] in right else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()
        console.out(title, highlight=False)
        console.out(line(columns), highlight=False)
        console.out("  ".join("-" * w for w in widths), highlight=False)
        for r in rows:
            console.out(line(r), highlight=False)
        return
    t = Table(title=escape(title))
    for i, col in enumerate(columns):
        width = max([len(col)] + [len(r[i]) for r in rows])
        t.add_column(col, justify="right" if col in right else "left", no_wrap=True, overflow="ellipsis",
                     min_width=None if i == len(columns) - 1 else width)
    for r in rows:
        t.add_row(*(_style(c) if columns[i] == "status" else escape(c) for i, c in enumerate(r)))
    console.print(t)


def summary(console: Console, result: RunResult, runtimes: dict[str, str], *, plain: bool) -> None:
    rows = [(s.name, s.type, runtimes.get(s.name, ""), status_text(s, short=True),
             f"{s.seconds:.1f}" if s.status in ("Succeeded", "Failed") else "", s.image)
            for s in result.steps.values()]
    table(console, f"{result.pipeline} · execution {result.execution_id} · {result.status} in {result.seconds:.1f} s",
          ("step", "type", "runtime", "status", "seconds", "image"), rows, plain=plain, right=("seconds",))
    out = console.out if plain else console.print
    for label, attr in (("cached", "cached_from"), ("reused", "reused_from")):
        sources: dict[str, list[str]] = {}
        for s in result.steps.values():
            if s.status == "Succeeded" and getattr(s, attr):
                sources.setdefault(getattr(s, attr), []).append(s.name)
        for source, names in sources.items():
            out(f"{label} from execution {source}: {', '.join(names)}", highlight=False)
    for s in result.steps.values():
        if s.type == "Condition" and s.status == "Succeeded":
            taken = "if" if s.properties.get("Outcome") else "else"
            branch = [n for n, r in result.steps.items() if r.branch == f"{s.name}:{taken}"]
            out(f"condition {s.name}: {s.properties.get('EvaluatedConditions', '')} → "
                f"{s.properties.get('Outcome')}: ran the {taken} branch ({', '.join(branch) or 'no steps'})",
                highlight=False)
        if s.type == "Training" and s.status == "Succeeded":
            metrics = s.properties.get("FinalMetricDataList") or []
            shown = (", ".join(f"{m['MetricName']}={m['Value']:g}" for m in metrics)
                     or "none (no MetricDefinitions matched)")
            out(f"metrics {s.name}: {shown}", highlight=False)
        if s.type == "Tuning" and s.status == "Succeeded":
            best = s.properties.get("BestTrainingJob") or {}
            objective = best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
            counts = s.properties.get("TrainingJobStatusCounters") or {}
            out(f"tuning {s.name}: {counts.get('Completed', 0)} completed, {counts.get('NonRetryableError', 0)} "
                f"failed; best {best.get('TrainingJobName')} {objective.get('MetricName')}="
                f"{objective.get('Value', float('nan')):g} ({objective.get('Type')}) with "
                + ", ".join(f"{k}={v}" for k, v in (best.get("TunedHyperParameters") or {}).items()),
                highlight=False)
            for job in s.properties.get("RosettaTrainingJobs") or []:
                metrics = ", ".join(f"{m['MetricName']}={m['Value']:g}" for m in job.get("FinalMetricDataList") or [])
                out(f"  {job['TrainingJobName']}: {job['TrainingJobStatus']}, "
                    + ", ".join(f"{k}={v}" for k, v in job["TunedHyperParameters"].items())
                    + (f" → {metrics}" if metrics else "") + (f" ({job['FailureReason']})" if job.get("FailureReason")
                                                              else ""), highlight=False)
        if s.type == "RegisterModel" and s.status == "Succeeded":
            p = s.properties
            out(f"registered {p.get('ModelPackageGroupName')} version {p.get('ModelPackageVersion')} "
                f"({p.get('ModelApprovalStatus')}): {p.get('ModelPackageArn')}", highlight=False)
        if s.type == "Transform" and s.status == "Succeeded":
            uri = str(s.properties["TransformOutput"]["S3OutputPath"])
            out(f"outputs {s.name}: {result.store.location(uri)} (one <input>.out per input file)", highlight=False)
    for s in result.failed:
        title = f"step {s.name} failed" if s.type != "Fail" else f"Fail step {s.name} reached"
        body = [f"reason: {s.reason}"]
        if s.exit_code is not None:
            body.append(f"exit code: {s.exit_code}")
        if s.details.strip():
            body.append(f"details (/opt/ml/output/failure or errors):\n{s.details.strip()[:3000]}")
        if result.workdir is not None and s.type != "Fail":
            body.append(f"work folder: {result.workdir / s.name}")
        if plain:
            out(f"{title}:\n  " + "\n  ".join("\n".join(body).splitlines()), highlight=False)
        else:
            console.print(Panel(escape("\n".join(body)), title=title, border_style="red", expand=False))
    if result.status == "Failed" and result.failure_reason:
        out(f"execution failed: {result.failure_reason}", highlight=False)
    out(f"artifacts: {result.store.describe()}", highlight=False)
