"""The runtime's view of a model: a small adapter around user code (like KServe's ``Model``).

The server and the training entry only ever talk to a :class:`ModelAdapter`. The default
adapter wraps a user's Python module (:mod:`rosetta_runtime.user`); the R-via-rpy2 flavour
plugs in its own adapter through ``ROSETTA_ADAPTER=module:Class`` and so gets the same
HTTP semantics by construction.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

DEFAULT_ADAPTER = "rosetta_runtime.user:PythonModel"

log = logging.getLogger("rosetta.adapter")


@runtime_checkable
class ModelAdapter(Protocol):
    """What the server needs from a loaded model.

    ``inline``: call :meth:`predict` on the event-loop thread (required for an embedded R,
    which must only ever be called from the thread that started it); otherwise predictions
    run on one worker thread so ``/ping`` keeps answering during a long request (S-07).

    Optional attributes, read once when serving starts: ``features`` (the request columns from
    ``rosetta.json``: a first CSV line equal to them is a header, D1) and ``has_input_fn`` /
    ``has_output_fn`` (whether the user wrote the hooks: without them 415 and 406 are answered
    before decoding, D3; an adapter without these attributes is asked for both every time), and
    ``rowwise`` (the user declared predict row-wise: concurrent requests may share one
    :meth:`predict` call, D9; absent means no).

    Multi-model mode (D6) calls the optional ``prepare()`` once at start (load user code, no model),
    then gives every model a ``copy.copy()`` of the prepared adapter and calls its :meth:`load`.
    """

    inline: bool
    n_features: int | None

    def load(self, model_dir: Path) -> None:
        """Load the model from ``model_dir`` (read-only, S-02); raise on a missing/corrupt model."""

    def predict(self, X: np.ndarray) -> Any:
        """Predict a float64 matrix (records × features); 1-D (one value per record) or 2-D result."""

    def decode(self, body: bytes, content_type: str) -> Any | None:
        """A user ``input_fn``: return model input, or ``None`` to use the built-in codecs."""

    def encode(self, predictions: Any, accept: str) -> tuple[bytes, str] | None:
        """A user ``output_fn``: return ``(body, content_type)``, or ``None`` for the built-in codecs."""

    def sample(self) -> np.ndarray | None:
        """One input row for the warm-up prediction, or ``None`` if unknown."""


def load_adapter(spec: str | None = None) -> ModelAdapter:
    """Instantiate the adapter named by ``module:Class`` (default: ``ROSETTA_ADAPTER`` or Python)."""
    spec = spec or os.environ.get("ROSETTA_ADAPTER") or DEFAULT_ADAPTER
    module, _, cls = spec.partition(":")
    adapter = getattr(importlib.import_module(module), cls)()
    if not isinstance(adapter, ModelAdapter):
        raise TypeError(f"{spec} does not implement rosetta_runtime.adapter.ModelAdapter")
    return adapter


def warm_up(adapter: ModelAdapter) -> float | None:
    """One prediction through the model so the first real request pays no first-call cost.

    Returns the seconds of a second (warm) prediction, or None without a sample.
    """
    sample = adapter.sample()
    if sample is None:
        log.info("no warm-up sample (n_features unknown); skipping warm-up")
        return None
    t0 = time.perf_counter()
    adapter.predict(sample)
    t1 = time.perf_counter()
    adapter.predict(sample)
    took = time.perf_counter() - t1
    log.info("warm-up prediction took %.1f ms (then %.1f ms)", (t1 - t0) * 1e3, took * 1e3)
    return took
