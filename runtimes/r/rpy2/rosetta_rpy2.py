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

# R functions looked up once: parsing or resolving `rosetta:::f` per request costs a
# noticeable part of a one-row prediction
_R_PREDICT = ro.r("rosetta:::predict_matrix")
_R_HOOK = ro.r("function(state, name) rosetta:::user_hook(state$user, name)")
_R_FIELD = ro.r("function(state, name) state[[name]]")


def _to_r(X: np.ndarray) -> Any:
    """records × features float64 → an R numeric matrix, without the converter machinery."""
    values = np.asfortranarray(X, dtype=np.float64).ravel(order="F")
    matrix = ri.FloatSexpVector.from_memoryview(values.data)
    matrix.do_slot_assign("dim", ri.IntSexpVector(X.shape))
    return matrix


def _to_python(value: Any) -> Any:
    """R predictions → numpy: labels as a str array, numbers as float64 (matrices reshaped)."""
    dim = value.do_slot("dim") if "dim" in value.list_attrs() else None
    if isinstance(value, ri.StrSexpVector):
        out = np.array(list(value), dtype=object)
    elif isinstance(value, ri.FloatSexpVector | ri.IntSexpVector):
        out = np.array(value, dtype=np.float64)
    else:
        with _CONVERTER.context():
            return np.asarray(ro.conversion.get_conversion().rpy2py(value))
    if dim is not None and len(dim) == 2:
        out = out.reshape((dim[0], dim[1]), order="F")
    return out


class RModel:
    """:class:`rosetta_runtime.adapter.ModelAdapter` for ``model.R``."""

    inline = True

    def __init__(self) -> None:
        ro.r("suppressPackageStartupMessages(library(rosetta))")
        self.n_features: int | None = None
        self._state: Any = None
        self._last: Any = None  # the R predictions of the current request, for output_fn
        self._input_fn: Any | None = None
        self._output_fn: Any | None = None

    def _hook(self, name: str) -> Any | None:
        hook = _R_HOOK(self._state, name)
        return None if hook is ri.NULL else hook

    def load(self, model_dir: Path) -> None:
        """Load user code + model and warm up in R (raises on a missing/corrupt model)."""
        self._state = ro.r("rosetta:::load_state")(str(model_dir))
        n = _R_FIELD(self._state, "n_features")
        self.n_features = None if n is ri.NULL else int(n[0])
        # user code is loaded once, so its optional hooks are looked up once
        self._input_fn, self._output_fn = self._hook("input_fn"), self._hook("output_fn")

    def predict(self, X: Any) -> Any:
        self._last = _R_PREDICT(self._state, _to_r(X) if isinstance(X, np.ndarray) else X)
        return _to_python(self._last)

    def decode(self, body: bytes, content_type: str) -> Any | None:
        if self._input_fn is None:
            return None
        out = self._input_fn(ri.ByteSexpVector(body), content_type)
        return None if out is ri.NULL else out

    def encode(self, predictions: Any, accept: str) -> tuple[bytes, str] | None:
        if self._output_fn is None:
            return None
        out = self._output_fn(self._last, accept)
        if out is ri.NULL:
            return None
        body, ctype = out[0], out[1]
        data = bytes(body) if isinstance(body, ri.ByteSexpVector) else str(body[0]).encode("utf-8")
        return data, str(ctype[0])

    def sample(self) -> np.ndarray | None:
        return np.zeros((1, self.n_features)) if self.n_features else None
