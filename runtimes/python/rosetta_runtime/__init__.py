"""Rosetta's Python runtime: the SageMaker training and serving contract around ``fit``/``predict``.

User code imports only what it needs from here (``log_metric``, ``BadRequest``); everything
else (paths, environment, HTTP) is the runtime's business.
"""

from rosetta_runtime.errors import BadRequest, DataError, HyperparameterError
from rosetta_runtime.metrics import log_metric

__all__ = ["BadRequest", "DataError", "HyperparameterError", "log_metric"]
__version__ = "0.1.0"
