"""Metrics in one stable line format SageMaker's MetricDefinitions can match (T-20).

``#metric accuracy=0.95`` → regex ``accuracy=(\\S+)``.
"""

from __future__ import annotations

import sys


def log_metric(name: str, value: float) -> None:
    if not name or any(c in name for c in " =\n"):
        raise ValueError(f"metric name must be a single word without '=': {name!r}")
    print(f"#metric {name}={float(value):.10g}", file=sys.stdout, flush=True)
