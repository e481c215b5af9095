"""Rosetta's Python runtime: the SageMaker training and serving contract around ``fit``/``predict``.

User code imports only what it needs from here (``log_metric``, ``BadRequest``, ``cluster`` (D7),
``save_checkpoint``/``load_checkpoint``/``checkpoint_dir`` (D8), ``rowwise`` (D9)); everything else (paths,
environment, HTTP) is the runtime's business.
"""

from rosetta_runtime.batching import rowwise
from rosetta_runtime.checkpoints import checkpoint_dir, load_checkpoint, save_checkpoint
from rosetta_runtime.cluster import Cluster, cluster
from rosetta_runtime.errors import BadRequest, DataError, HyperparameterError
from rosetta_runtime.metrics import log_metric

__all__ = ["BadRequest", "Cluster", "DataError", "HyperparameterError", "checkpoint_dir", "cluster",
           "load_checkpoint", "log_metric", "rowwise", "save_checkpoint"]
__version__ = "0.1.0"
