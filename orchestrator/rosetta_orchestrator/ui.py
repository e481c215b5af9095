"""What the user sees during a local run: prefixed container logs, live progress, a clear failure."""

from __future__ import annotations

import threading
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from rosetta_orchestrator.local.runner import RunResult, StepResult

COLORS = ("cyan", "magenta", "green", "yellow", "blue", "bright_red", "bright_cyan", "bright_magenta")
STATUS = {"Succeeded": "[green]Succeeded[/]", "Failed": "[bold red]Failed[/]",
          "NotStarted": "[dim]not started[/]", "Executing": "[yellow]Executing[/]"}


class RichReporter:
    """Streams ``[Step] line`` for every container line and a spinner per running step."""

    def __init__(self, console: Console, runtimes: dict[str, str] | None = None) -> None:
        self.console = console
        self.runtimes = runtimes or {}
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                 console=console, transient=True)
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
            self.console.print(f"[{self._color(step.name)}]▶ {step.name}[/] started "
                               f"({step.type}, {escape(step.image)})")

    def log(self, step: str, line: str) -> None:
        with self._lock:
            self.console.print(f"[{self._color(step)}]\\[{step}][/] {escape(line)}", highlight=False,
                               soft_wrap=True)

    def finished(self, step: StepResult) -> None:
        with self._lock:
            if step.name in self.tasks:
                self.progress.remove_task(self.tasks.pop(step.name))
            mark = "✔" if step.status == "Succeeded" else "✘"
            self.console.print(f"[{self._color(step.name)}]{mark} {step.name}[/] {STATUS[step.status]} "
                               f"in {step.seconds:.1f} s" + (f": {escape(step.reason)}" if step.reason else ""))


def summary(console: Console, result: RunResult, runtimes: dict[str, str], workdir: Path) -> None:
    table = Table(title=f"{result.pipeline} · execution {result.execution_id} · {result.status} "
                        f"in {result.seconds:.1f} s")
    rows = [(s.name, s.type, runtimes.get(s.name, ""), STATUS[s.status],
             f"{s.seconds:.1f}" if s.status in ("Succeeded", "Failed") else "", escape(s.image))
            for s in result.steps.values()]
    plain = {"[green]Succeeded[/]": "Succeeded", "[bold red]Failed[/]": "Failed",
             "[dim]not started[/]": "not started", "[yellow]Executing[/]": "Executing"}
    for i, col in enumerate(("step", "type", "runtime", "status", "seconds", "image")):
        width = max([len(col)] + [len(plain.get(r[i], r[i])) for r in rows])
        # every column keeps its width; only the image (last) is cut on a narrow terminal
        table.add_column(col, justify="right" if col == "seconds" else "left", no_wrap=True,
                         overflow="ellipsis", min_width=None if col == "image" else width)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for s in result.failed:
        body = [f"[bold]reason:[/] {escape(s.reason)}"]
        if s.exit_code is not None:
            body.append(f"[bold]exit code:[/] {s.exit_code}")
        if s.details.strip():
            body.append(f"[bold]details[/] (/opt/ml/output/failure or errors):\n{escape(s.details.strip()[:3000])}")
        body.append(f"[dim]work folder: {workdir / result.execution_id / s.name}[/]")
        console.print(Panel("\n".join(body), title=f"step {s.name} failed", border_style="red"))
    console.print(f"artifacts: {result.store.describe()}")
