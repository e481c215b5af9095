"""Gradient-boosted trees with XGBoost's own distributed mode, on the hosts of one training job.

Every host reads its own shard of channel ``train`` (``ShardedByS3Key``). With several hosts, the
first one (``cluster().is_first``, ``algo-1``) starts XGBoost's tracker; every host joins XGBoost's
collective through it and ``xgb.train`` builds each tree from the histograms of all shards
(allreduce), so every host ends with the same booster. Only ``algo-1`` saves it and logs the
metrics. Channel ``validation`` (``FullyReplicated``) gives the accuracy the example compares
between 1, 2 and 3 hosts.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xgboost as xgb
from xgboost import collective
from xgboost.tracker import RabitTracker

from rosetta_runtime import DataError, cluster, log_metric, rowwise

TRACKER_PORT = 9091
#: algo-1 answers here once its tracker listens (a probe of the tracker's own port would upset it)
READY_PORT = 9092
MODEL_FILE = "xgboost-model.json"


@dataclass
class Hyperparameters:
    target: str = "label"
    num_round: int = 60
    max_depth: int = 4
    eta: float = 0.3
    min_child_weight: float = 1.0
    #: threads per host; 0: the machine's cores shared between the hosts
    nthread: int = 0


def fit(data, hp: Hyperparameters) -> xgb.Booster:
    c = cluster()
    train = data["train"]
    X, y = train.drop(columns=[hp.target]).to_numpy(dtype=float), train[hp.target].to_numpy(dtype=float)
    threads = hp.nthread or max(1, (os.cpu_count() or 1) // len(c.hosts))
    params = {"tree_method": "hist", "objective": "binary:logistic", "eval_metric": "error",
              "max_depth": hp.max_depth, "eta": hp.eta, "min_child_weight": hp.min_child_weight, "nthread": threads}
    print(f"{c.current_host} of {list(c.hosts)} (SM_HOSTS={os.environ.get('SM_HOSTS')}): {len(y)} rows in this shard",
          flush=True)
    evals: dict = {}
    if len(c.hosts) == 1:
        booster = xgb.train(params, xgb.DMatrix(X, label=y), hp.num_round, evals=[(xgb.DMatrix(X, label=y), "train")],
                            evals_result=evals, verbose_eval=False)
    else:
        booster = _train_together(c, params, X, y, hp.num_round, evals)
    if c.is_first:
        log_metric("train:error", evals["train"]["error"][-1])  # over every shard: the collective reduces it
        validation = data["validation"]
        Xv, yv = validation.drop(columns=[hp.target]).to_numpy(dtype=float), validation[hp.target].to_numpy()
        log_metric("validation:accuracy", float(np.mean(predict(booster, Xv) == yv)))
    return booster


def _train_together(c, params: dict, X: np.ndarray, y: np.ndarray, rounds: int, evals: dict) -> xgb.Booster:
    """XGBoost's collective across the job's hosts: algo-1 runs the tracker, every host is a worker."""
    tracker = ready = None
    if c.is_first:
        tracker = RabitTracker(n_workers=len(c.hosts), host_ip=socket.gethostbyname(c.current_host),
                               port=TRACKER_PORT, sortby="task", timeout=600)
        tracker.start()
        ready = socket.create_server(("0.0.0.0", READY_PORT))
        threading.Thread(target=_answer, args=(ready,), daemon=True).start()
    _wait_for(c.hosts[0], READY_PORT)
    args = {"dmlc_communicator": "rabit", "dmlc_tracker_uri": socket.gethostbyname(c.hosts[0]),
            "dmlc_tracker_port": TRACKER_PORT, "dmlc_task_id": c.current_host, "dmlc_timeout": 600}
    with collective.CommunicatorContext(**args):
        print(f"{c.current_host}: rank {collective.get_rank()} of {collective.get_world_size()}", flush=True)
        dtrain = xgb.DMatrix(X, label=y)
        booster = xgb.train(params, dtrain, rounds, evals=[(dtrain, "train")], evals_result=evals,
                            verbose_eval=False)
    if tracker is not None and ready is not None:
        tracker.wait_for(60)
        ready.close()
    return booster


def _answer(server: socket.socket) -> None:
    while True:
        try:
            conn, _ = server.accept()
        except OSError:  # closed: training is over
            return
        conn.close()


def _wait_for(host: str, port: int, timeout: float = 300) -> None:
    """The other hosts may start before algo-1's tracker listens (or before its name resolves)."""
    end = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=2):
                return
        except OSError as exc:
            if time.monotonic() > end:
                raise DataError(f"no XGBoost tracker at {host}:{port} after {timeout:.0f} s ({exc})") from exc
            time.sleep(0.2)


def save(model: xgb.Booster, model_dir: Path) -> None:
    """XGBoost's own format, written by the first host only (every host holds the same booster)."""
    if cluster().is_first:
        model.save_model(model_dir / MODEL_FILE)


def load(model_dir: Path) -> xgb.Booster:
    booster = xgb.Booster()
    booster.load_model(model_dir / MODEL_FILE)
    return booster


@rowwise  # one prediction per row, from that row only
def predict(model: xgb.Booster, X: np.ndarray) -> np.ndarray:
    return (model.predict(xgb.DMatrix(np.asarray(X, dtype=float))) > 0.5).astype(int)


def n_features(model: xgb.Booster) -> int:
    return int(model.num_features())
