"""Training channels as data frames (T-07, T-08): ``data["train"]`` reads every file of the channel once."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rosetta_runtime.errors import DataError


class Channels(Mapping[str, Any]):
    """Channel name → pandas DataFrame (all files concatenated, header row expected).

    Read lazily, only when asked, and never written to (FastFile channels are read-only, T-08).
    ``path(name)`` gives the folder for non-CSV data.
    """

    def __init__(self, data_dir: Path, names: list[str]) -> None:
        self._dir = data_dir
        self._names = sorted(names)
        self._cache: dict[str, Any] = {}

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def path(self, name: str) -> Path:
        if name not in self._names:
            raise DataError(f"no channel {name!r}; channels: {', '.join(self._names) or 'none'}")
        return self._dir / name

    def files(self, name: str) -> list[Path]:
        folder = self.path(name)
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise DataError(f"channel {name!r} is empty ({folder})")
        return files

    def __getitem__(self, name: str) -> Any:
        if name not in self._cache:
            import pandas as pd  # training only: serving never imports pandas

            frames = []
            for file in self.files(name):
                try:
                    frames.append(pd.read_csv(file))
                except Exception as exc:
                    raise DataError(f"cannot read {name}/{file.name} as CSV: {exc}") from exc
            self._cache[name] = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        return self._cache[name]
