"""R user code behind the Python server (the ``rosetta/r:rpy2`` flavour).

``ROSETTA_ADAPTER=rosetta_rpy2:RModel`` makes the Python runtime's server load this
adapter: R is embedded in the server process (rpy2 < 3.6; 3.6 needs R ≥ 4.3 C API), the R
package ``rosetta`` loads ``model.R`` and the model exactly as the plumber flavour does
(``rosetta:::load_state``), and every prediction is one R call. R is not thread-safe, so
``inline = True``: the server calls :meth:`RModel.predict` on its event-loop thread only.

The HTTP contract (codecs, D1 header rule, D3 order of checks and messages, the record count
check) is the Python runtime's; this adapter gives it what it needs from R: the request
columns (``features``, D2), whether ``model.R`` defines the hooks, and errors of user code
as Python exceptions carrying only the R condition's message.
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
_R_INPUT = ro.r("rosetta:::foreign_input")
_R_OUTPUT = ro.r("rosetta:::foreign_output")
_R_FIELD = ro.r("function(state, name) state[[name]]")
_R_HOOK = ro.r("function(user, name) rosetta:::user_hook(user, name)")


class RUserError(Exception):
    """An error raised by R user code; the message is the R condition's (no R call, D3)."""


def _checked(value: Any) -> Any:
    """``value``, or :class:`RUserError` if it is an R condition returned in its place."""
    # conditions are lists; predictions and hook results rarely are, so the class is read rarely
    if isinstance(value, ri.ListSexpVector) and "condition" in ro.baseenv["class"](value):
        raise RUserError(str(value[0][0]))
    return value


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


class RInput:
    """What the user's ``input_fn`` returned, kept in R; ``shape`` (from R's ``dim()``) lets the
    server check one output per record (D3) for a matrix or data.frame."""

    def __init__(self, value: Any, dim: Any) -> None:
        self.value = value
        self.shape: tuple[int, ...] | None = None if dim is ri.NULL else tuple(int(d) for d in dim)


class RModel:
    """:class:`rosetta_runtime.adapter.ModelAdapter` for ``model.R``."""

    inline = True

    def __init__(self) -> None:
        ro.r("suppressPackageStartupMessages(library(rosetta))")
        self.n_features: int | None = None
        self.features: list[str] | None = None
        self.has_input_fn = False
        self.has_output_fn = False
        #: model.R declares ``rowwise <- TRUE`` (D9); see :meth:`prepare`
        self.rowwise = False
        self._user: Any = None
        self._state: Any = None

    def prepare(self) -> None:
        """Load model.R once (multi-model mode, D6: every model then gets a ``copy.copy()`` of this adapter).

        Batching (D9) follows ``rowwise <- TRUE``, except with an ``output_fn``: the hook gets R's own
        predictions object, which cannot be cut per request once a batch's result has come to Python.
        """
        self._user = ro.r("rosetta:::foreign_user")()
        self.has_output_fn = _R_HOOK(self._user, "output_fn") is not ri.NULL
        self.has_input_fn = _R_HOOK(self._user, "input_fn") is not ri.NULL
        self.rowwise = bool(ro.r("rosetta:::user_rowwise")(self._user)[0]) and not self.has_output_fn

    def load(self, model_dir: Path) -> None:
        """Load the settings, user code (unless prepared) and model, and warm up, in R (raises on a
        missing/corrupt model)."""
        if self._user is None:
            self.prepare()
        self._state = ro.r("rosetta:::load_state")(str(model_dir), ro.r("rosetta:::serving_settings")(), self._user)
        n = _R_FIELD(self._state, "n_features")
        self.n_features = None if n is ri.NULL else int(n[0])
        features = _R_FIELD(self._state, "features")
        self.features = None if features is ri.NULL else [str(f) for f in features]
        # user code is loaded once, so whether it has the hooks is known once
        self.has_input_fn = _R_FIELD(self._state, "input_fn") is not ri.NULL
        self.has_output_fn = _R_FIELD(self._state, "output_fn") is not ri.NULL

    def predict(self, X: Any) -> Any:
        if isinstance(X, RInput):
            return _to_python(_checked(_R_PREDICT(self._state, X.value, True)))
        return _to_python(_checked(_R_PREDICT(self._state, _to_r(X) if isinstance(X, np.ndarray) else X)))

    def decode(self, body: bytes, content_type: str) -> Any | None:
        if not self.has_input_fn:
            return None
        value, dim = _checked(_R_INPUT(self._state, ri.ByteSexpVector(body), content_type))
        return None if value is ri.NULL else RInput(value, dim)

    def encode(self, predictions: Any, accept: str) -> tuple[bytes, str] | None:
        if not self.has_output_fn:
            return None
        out = _checked(_R_OUTPUT(self._state, accept))
        if out is ri.NULL:
            return None
        body, ctype = out[0], out[1]
        data = bytes(body) if isinstance(body, ri.ByteSexpVector) else str(body[0]).encode("utf-8")
        return data, str(ctype[0])

    def sample(self) -> np.ndarray | None:
        return np.zeros((1, self.n_features)) if self.n_features else None
