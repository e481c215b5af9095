"""Paths and environment: where SageMaker puts things and what the platform tells us (T-01..T-07, S-04).

Every other module reads configuration from here, so the runtime can run in-process on a
temporary ``/opt/ml`` (``ROSETTA_ML_ROOT``) in tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
#: SageMaker's real-time payload limit; the server never accepts less (S-12).
MIN_PAYLOAD_MB = 6
#: the MaxPayloadInMB a transform job gets when neither it nor SAGEMAKER_MAX_PAYLOAD_IN_MB sets one (B-03):
#: small enough that a few MB of records spread over all workers (2 MB payloads at MaxConcurrentTransforms
#: 2 move 1.5-2x the rows/s of one 6 MB payload, docs/benchmarks.md), large enough that the ~1 ms per
#: request is noise (2 MB ≈ 90,000 iris rows ≈ 40 ms of work); a bigger single record needs the variable.
BATCH_PAYLOAD_MB = 2


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    try:
        return int(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def _env_number(name: str, default: float) -> float:
    raw = _env(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


def _env_bool(name: str, default: bool = False) -> bool:
    raw = _env(name).lower()
    return default if not raw else raw in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Paths:
    """The ``/opt/ml`` layout (rooted at ``ROSETTA_ML_ROOT`` for tests)."""

    root: Path
    model_dir: Path
    code_dir: Path
    program: str

    @classmethod
    def from_env(cls, program_default: str = "model.py") -> Paths:
        root = Path(_env("ROSETTA_ML_ROOT", "/opt/ml"))
        return cls(
            root=root,
            model_dir=Path(_env("ROSETTA_MODEL_DIR") or root / "model"),
            code_dir=Path(_env("ROSETTA_CODE_DIR", "/opt/program")),
            program=_env("ROSETTA_PROGRAM") or _env("SAGEMAKER_PROGRAM") or program_default,
        )

    @property
    def input_dir(self) -> Path:
        return self.root / "input"

    @property
    def config_dir(self) -> Path:
        return self.input_dir / "config"

    @property
    def hyperparameters(self) -> Path:
        return self.config_dir / "hyperparameters.json"

    @property
    def inputdataconfig(self) -> Path:
        return self.config_dir / "inputdataconfig.json"

    @property
    def resourceconfig(self) -> Path:
        return self.config_dir / "resourceconfig.json"

    @property
    def checkpointconfig(self) -> Path:
        return self.config_dir / "checkpointconfig.json"

    @property
    def data_dir(self) -> Path:
        return self.input_dir / "data"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def output_data_dir(self) -> Path:
        return self.output_dir / "data"

    @property
    def failure(self) -> Path:
        return self.output_dir / "failure"

    @property
    def checkpoints(self) -> Path:
        """The default checkpoint folder; ``checkpoints.checkpoint_dir()`` honours checkpointconfig.json."""
        return self.root / "checkpoints"

    @property
    def user_file(self) -> Path:
        return self.code_dir / self.program


@dataclass(frozen=True)
class ServingSettings:
    """Serving configuration from SageMaker's own variables (S-04, S-12, B-02, B-03)."""

    port: int
    workers: int
    max_payload_mb: int
    #: MaxPayloadInMB advertised on /execution-parameters (B-03); not the body limit
    batch_payload_mb: int
    default_accept: str
    csv_header: bool
    batch: bool
    batch_strategy: str
    max_concurrent_transforms: int
    timeout: int
    inline_max_bytes: int
    #: SAGEMAKER_MULTI_MODEL=true (D6): models come and go through /models instead of /opt/ml/model
    multi_model: bool = False
    #: ROSETTA_MME_MEMORY_MB in bytes, else 80 % of the container's memory limit (D6); read in that mode only
    mme_memory_bytes: int = 0
    #: ROSETTA_MME_STATE_DIR: the registry the worker processes share (D6)
    mme_state_dir: Path = Path("/tmp/rosetta-mme")
    #: ROSETTA_BATCHING (D9): "auto" (or "on") batches the requests of a model whose predict is declared row-wise; "off"
    batching: str = "auto"
    #: ROSETTA_BATCH_MAX_ROWS (D9): no batch exceeds it (a single larger request runs alone)
    batch_max_rows: int = 512
    #: ROSETTA_BATCH_WAIT_MS (D9): how long a batch formed after a prediction may wait to fill (0: not at all)
    batch_wait_ms: float = 0.0

    @property
    def max_body_bytes(self) -> int:
        return self.max_payload_mb * MIB

    @classmethod
    def from_env(cls) -> ServingSettings:
        workers = _env_int("SAGEMAKER_MODEL_SERVER_WORKERS", os.cpu_count() or 1)
        payload = max(_env_int("SAGEMAKER_MAX_PAYLOAD_IN_MB", MIN_PAYLOAD_MB), MIN_PAYLOAD_MB)
        strategy = _env("SAGEMAKER_BATCH_STRATEGY", "MULTI_RECORD").upper().replace("MULTIRECORD", "MULTI_RECORD")
        strategy = strategy.replace("SINGLERECORD", "SINGLE_RECORD")
        multi_model = _env("SAGEMAKER_MULTI_MODEL").lower() == "true"
        batching = _env("ROSETTA_BATCHING", "auto").lower()
        if batching not in BATCHING_MODES:
            raise ValueError(f"ROSETTA_BATCHING must be 'auto', 'on' or 'off', got {_env('ROSETTA_BATCHING')!r}")
        max_rows = _env_int("ROSETTA_BATCH_MAX_ROWS", 512)
        if max_rows < 1:
            raise ValueError(f"ROSETTA_BATCH_MAX_ROWS must be at least 1, got {max_rows}")
        wait_ms = _env_number("ROSETTA_BATCH_WAIT_MS", 0.0)
        if not 0 <= wait_ms < float("inf"):
            raise ValueError(f"ROSETTA_BATCH_WAIT_MS must be milliseconds ≥ 0, got {_env('ROSETTA_BATCH_WAIT_MS')!r}")
        return cls(
            port=_env_int("SAGEMAKER_BIND_TO_PORT", 8080),
            workers=max(1, workers),
            max_payload_mb=payload,
            batch_payload_mb=max(1, _env_int("SAGEMAKER_MAX_PAYLOAD_IN_MB", BATCH_PAYLOAD_MB)),
            default_accept=_env("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"),
            csv_header=_env_bool("ROSETTA_CSV_HEADER"),
            batch=_env_bool("SAGEMAKER_BATCH"),
            batch_strategy=strategy if strategy in {"MULTI_RECORD", "SINGLE_RECORD"} else "MULTI_RECORD",
            max_concurrent_transforms=_env_int("SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", max(1, workers)),
            timeout=max(60, _env_int("SAGEMAKER_MODEL_SERVER_TIMEOUT", 60)),
            inline_max_bytes=_env_int("ROSETTA_INLINE_MAX_BYTES", 64 * 1024),
            multi_model=multi_model,
            mme_memory_bytes=_memory_budget() if multi_model else 0,
            mme_state_dir=Path(_env("ROSETTA_MME_STATE_DIR") or "/tmp/rosetta-mme"),
            batching=batching,
            batch_max_rows=max_rows,
            batch_wait_ms=wait_ms,
        )


#: the values of ROSETTA_BATCHING (D9); "on" is "auto" here (the R plumber worker needs it to batch at all)
BATCHING_MODES = ("auto", "on", "off")

#: the share of the container's memory that models may take when ROSETTA_MME_MEMORY_MB is not set (D6)
MME_MEMORY_SHARE = 0.8


def _memory_budget() -> int:
    """ROSETTA_MME_MEMORY_MB (MiB, 0 refuses every model), else 80 % of the memory limit."""
    mb = _env_int("ROSETTA_MME_MEMORY_MB", -1)
    if mb >= 0:
        return mb * MIB
    if _env("ROSETTA_MME_MEMORY_MB"):
        raise ValueError(f"ROSETTA_MME_MEMORY_MB must be ≥ 0, got {_env('ROSETTA_MME_MEMORY_MB')!r}")
    return int(memory_limit() * MME_MEMORY_SHARE)


def memory_limit() -> int:
    """The container's memory limit in bytes: cgroup v2 ``memory.max`` or v1 ``memory.limit_in_bytes``,
    else (unlimited, or no cgroup) the machine's physical memory."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for file in (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes")):
        try:
            raw = file.read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and 0 < int(raw) < physical:  # "max", or v1's huge "unlimited" number
            return int(raw)
        return physical
    return physical
