"""R user code behind the Python server (the ``rosetta/r:rpy2`` flavour).

``ROSETTA_ADAPTER=rosetta_rpy2:RModel`` makes the Python runtime's server load this
adapter: R is embedded in the server process (rpy2 < 3.6; 3.6 needs R ≥ 4.3 C API), the R
package ``rosetta`` loads ``model.R`` and the model exactly as the plumber flavour does
(``rosetta:::load_state``), and every prediction is one R call. R is not thread-safe, so
``inline = True``: the server calls :meth:`RModel.predict` on its event-loop thread only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rpy2.rinterface as ri  # type: ignore[import-not-found, import-untyped, unused-ignore]
import rpy2.robjects as ro  # type: ignore[import-not-found, import-untyped, unused-ignore]
from rpy2.robjects import numpy2ri  # type: ignore[import-not-found, import-untyped, unused-ignore]

_CONVERTER = ro.default_converter + numpy2ri.converter


def _r(name: str) -> Any:
    """A function from the rosetta R package's namespace."""
    return ro.r(f"rosetta:::{name}")


def _to_python(value: Any) -> Any:
    """An R vector/matrix → numpy (labels as a str array), via the numpy converter."""
    with _CONVERTER.context():
        out = ro.conversion.get_conversion().rpy2py(value)
    return np.asarray(out) if not isinstance(out, np.ndarray) else out


class RModel:
    """:class:`rosetta_runtime.adapter.ModelAdapter` for ``model.R``."""

    inline = True

    def __init__(self) -> None:
        ro.r("suppressPackageStartupMessages(library(rosetta))")
        self.n_features: int | None = None
        self._state: Any = None
        self._last: Any = None  # the R predictions of the current request, for output_fn

    def _hook(self, name: str) -> Any | None:
        hook = ro.r("function(state, name) rosetta:::user_hook(state$user, name)")(self._state, name)
        return None if hook is ri.NULL else hook

    def load(self, model_dir: Path) -> None:
        """Load user code + model and warm up in R (raises on a missing/corrupt model)."""
        self._state = _r("load_state")(str(model_dir))
        n = ro.r("function(s) s$n_features")(self._state)
        self.n_features = None if n is ri.NULL else int(n[0])

    def predict(self, X: Any) -> Any:
        if isinstance(X, np.ndarray):
            with _CONVERTER.context():
                X = ro.conversion.get_conversion().py2rpy(np.ascontiguousarray(X, dtype=np.float64))
        self._last = _r("predict_matrix")(self._state, X)
        return _to_python(self._last)

    def decode(self, body: bytes, content_type: str) -> Any | None:
        hook = self._hook("input_fn")
        if hook is None:
            return None
        out = hook(ri.ByteSexpVector(body), content_type)
        return None if out is ri.NULL else out

    def encode(self, predictions: Any, accept: str) -> tuple[bytes, str] | None:
        hook = self._hook("output_fn")
        if hook is None:
            return None
        out = hook(self._last, accept)
        if out is ri.NULL:
            return None
        body, ctype = out[0], out[1]
        data = bytes(body) if isinstance(body, ri.ByteSexpVector) else str(body[0]).encode("utf-8")
        return data, str(ctype[0])

    def sample(self) -> np.ndarray | None:
        return np.zeros((1, self.n_features)) if self.n_features else None
