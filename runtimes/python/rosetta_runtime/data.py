"""Training channels as data frames (T-07, T-08, D4): ``data["train"]`` reads the channel's CSV files once."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rosetta_runtime.errors import DataError


class Channels(Mapping[str, Any]):
    """Channel name → pandas DataFrame: every non-hidden ``*.csv`` file (any case) under the channel
    folder, recursively, sorted by relative path (code-point order, ``/`` separators), concatenated;
    all must have the same header. Other files are ignored by the table (``files(name)`` lists them).

    Read lazily, only when asked, and never written to (FastFile channels are read-only, T-08).
    ``read`` records which tables user code asked for, in order (D2 takes the request columns from one).
    """

    def __init__(self, data_dir: Path, names: list[str]) -> None:
        self._dir = data_dir
        self._names = sorted(names)
        self._cache: dict[str, Any] = {}
        #: channel names whose table was read, in the order first asked for
        self.read: list[str] = []

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def path(self, name: str) -> Path:
        if name not in self._names:
            raise DataError(f"no channel {name!r}; channels: {', '.join(self._names) or 'none'}")
        return self._dir / name

    def relative_files(self, name: str) -> list[str]:
        """Every non-hidden file of the channel as a relative path with ``/``, sorted (code-point order)."""
        folder = self.path(name)
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                      if p.is_file() and not p.name.startswith("."))

    def files(self, name: str) -> list[Path]:
        """Every non-hidden file of the channel, whatever its format, sorted by relative path."""
        folder = self.path(name)
        files = [folder / rel for rel in self.relative_files(name)]
        if not files:
            raise DataError(f"channel {name!r} is empty ({folder})")
        return files

    def __getitem__(self, name: str) -> Any:
        if name not in self._cache:
            self._cache[name] = self._table(name)
            self.read.append(name)
        return self._cache[name]

    def _table(self, name: str) -> Any:
        import pandas as pd  # training only: serving never imports pandas

        folder = self.path(name)
        every = self.relative_files(name)
        csvs = [rel for rel in every if rel.lower().endswith(".csv")]
        if not csvs:
            raise DataError(f"channel {name!r} has no .csv files (found: {', '.join(every) or 'nothing'})")
        frames: list[Any] = []
        for rel in csvs:
            try:
                frame = pd.read_csv(folder / rel)
            except Exception as exc:
                raise DataError(f"cannot read {name}/{rel} as CSV: {exc}") from exc
            if frames and list(frame.columns) != list(frames[0].columns):
                raise DataError(f"channel {name!r}: {rel} has columns {', '.join(map(str, frame.columns))} "
                                f"but {csvs[0]} has {', '.join(map(str, frames[0].columns))}")
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
