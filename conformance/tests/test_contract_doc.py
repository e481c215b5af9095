"""docs/contract.md and clauses.py never disagree, and every clause ID cited anywhere is defined."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from rosetta_conformance import contract_doc
from rosetta_conformance.clauses import CLAUSES, ID_PATTERN

ROOT = Path(__file__).resolve().parents[2]
#: files that are data, not prose or code (a lock file's hashes, images)
SKIP_SUFFIXES = {".lock", ".png", ".jpg", ".gz", ".rds", ".jls", ".pkl", ".parquet"}


def _repository_files() -> list[Path]:
    """Tracked files plus new ones not ignored (other work in progress cites IDs too)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return [ROOT / p for p in out.splitlines() if Path(p).suffix not in SKIP_SUFFIXES and (ROOT / p).is_file()]


def test_contract_doc_is_generated_from_the_clause_table() -> None:
    path = ROOT / "docs" / "contract.md"
    text = path.read_text()
    assert contract_doc.updated(text) == text, "docs/contract.md is stale: python -m rosetta_conformance.contract_doc"
    for clause in CLAUSES.values():
        assert f"| {clause.id} | " in text


def test_every_cited_clause_id_is_defined() -> None:
    pattern = re.compile(ID_PATTERN)
    undefined: dict[str, list[str]] = {}
    for path in _repository_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            for cited in pattern.findall(line):
                if cited not in CLAUSES:
                    undefined.setdefault(cited, []).append(f"{path.relative_to(ROOT)}:{n}")
    assert not undefined, "clause IDs cited but not defined in clauses.py / docs/contract.md: " + "; ".join(
        f"{cid} ({', '.join(where[:3])})" for cid, where in sorted(undefined.items()))


def test_the_readme_profile_table_matches_the_clauses() -> None:
    """conformance/README.md lists the clauses of each checked profile; they are the suite's."""
    readme = (ROOT / "conformance" / "README.md").read_text()
    for profile in ("must", "should", "toolkit"):
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{profile}`"))
        listed = set(re.findall(ID_PATTERN, row))
        assert listed == {c.id for c in CLAUSES.values() if c.profile == profile}, profile
