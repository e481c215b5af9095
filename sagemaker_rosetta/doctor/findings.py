"""A finding: one thing wrong, in SageMaker's terms, with the clause it breaks and what to do."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape


@dataclass(frozen=True)
class Finding:
    """One problem: ``clause`` (a contract ID of docs/contract.md), ``what`` is wrong (as SageMaker would
    show it), ``todo`` (the fix). ``evidence`` is what was seen (a status, an exit code, a log line)."""

    clause: str
    what: str
    todo: str
    evidence: str = ""

    def line(self) -> str:
        """The finding as one plain line: ``CLAUSE  what (evidence) — do: todo``."""
        seen = f" ({_one_line(self.evidence)})" if self.evidence else ""
        return f"{self.clause}  {_one_line(self.what)}{seen} — do: {_one_line(self.todo)}"


def _one_line(text: str, limit: int = 400) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def dedupe(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per (clause, what), first seen first."""
    seen: set[tuple[str, str]] = set()
    out = []
    for f in findings:
        if (f.clause, f.what) not in seen:
            seen.add((f.clause, f.what))
            out.append(f)
    return out


def is_plain(console: Console) -> bool:
    """Plain full-width text unless both stdout and the console's stream are terminals."""
    return not (sys.stdout.isatty() and console.is_terminal)


def render(findings: list[Finding], console: Console, subject: str) -> None:
    """One line per finding on ``console`` (stdout); plain, never cut, when it is not a terminal."""
    plain = is_plain(console)
    if not findings:
        console.print(f"{subject}: nothing wrong found", markup=False, highlight=False, soft_wrap=True)
        return
    for f in findings:
        if plain:
            console.print(f.line(), markup=False, highlight=False, soft_wrap=True)
        else:
            seen = f" [dim]({escape(_one_line(f.evidence))})[/]" if f.evidence else ""
            console.print(f"[bold red]{f.clause}[/]  {escape(_one_line(f.what))}{seen} — [bold]do:[/] "
                          f"{escape(_one_line(f.todo))}", highlight=False)
