"""Checkpoints (D8, T-13) and the cluster (D7, T-05) as user code sees them, in-process."""

from __future__ import annotations

import json
import pickle
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from rosetta_runtime import Cluster, checkpoint_dir, cluster, load_checkpoint, save_checkpoint, train
from rosetta_runtime.errors import DataError

from .conftest import IRIS
from .test_train import setup_job


def test_save_and_load_in_the_default_folder(ml: Path) -> None:
    assert load_checkpoint() is None
    save_checkpoint({"epoch": 3, "weights": [1.5, 2.5]})
    assert load_checkpoint() == {"epoch": 3, "weights": [1.5, 2.5]}
    assert checkpoint_dir() == ml / "checkpoints"
    assert sorted(p.name for p in checkpoint_dir().iterdir()) == ["rosetta-checkpoint.pkl"]


def test_local_path_of_checkpointconfig_is_created_and_used(ml: Path) -> None:
    local = ml / "elsewhere" / "ckpt"
    (ml / "input/config/checkpointconfig.json").write_text(json.dumps({"LocalPath": str(local), "S3Uri": "s3://b/k"}))
    assert checkpoint_dir() == local and local.is_dir()
    save_checkpoint("state")
    assert load_checkpoint() == "state" and (local / "rosetta-checkpoint.pkl").is_file()
    assert not (ml / "checkpoints" / "rosetta-checkpoint.pkl").exists()


def test_a_failed_save_keeps_the_previous_checkpoint_whole(ml: Path) -> None:
    save_checkpoint({"epoch": 1})
    with pytest.raises(TypeError):
        save_checkpoint({"epoch": 2, "lock": threading.Lock()})  # not picklable, half written
    assert load_checkpoint() == {"epoch": 1}
    assert sorted(p.name for p in checkpoint_dir().iterdir()) == ["rosetta-checkpoint.pkl"]  # no temp file left


def test_unreadable_checkpoint_and_config_say_which_file(ml: Path) -> None:
    (ml / "checkpoints" / "rosetta-checkpoint.pkl").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match=r"rosetta-checkpoint\.pkl is unreadable"):
        load_checkpoint()
    (ml / "input/config/checkpointconfig.json").write_text("{")
    with pytest.raises(DataError, match=r"checkpointconfig\.json is not valid JSON"):
        checkpoint_dir()


def test_sigterm_hook_gets_the_local_path(ml: Path, user_code: Callable[[str], Path]) -> None:  # T-21, D8
    user_code('''
import os, signal, time
def fit(data, hp):
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
def predict(model, X):
    return X
def checkpoint(checkpoint_dir):
    (checkpoint_dir / "state.txt").write_text("epoch 3")
''')
    setup_job(ml, {}, {"train": IRIS / "data" / "train.csv"})
    (ml / "input/config/checkpointconfig.json").write_text(json.dumps({"LocalPath": str(ml / "spot")}))
    assert train.run() == train.EXIT_STOPPED
    assert (ml / "spot" / "state.txt").read_text() == "epoch 3"


def test_cluster_and_the_toolkit_variables_agree(ml: Path, user_code: Callable[[str], Path]) -> None:
    user_code('''
import json, os
from rosetta_runtime import cluster
def fit(data, hp):
    c = cluster()
    return {"hosts": json.loads(os.environ["SM_HOSTS"]), "current": os.environ["SM_CURRENT_HOST"],
            "iface": os.environ["SM_NETWORK_INTERFACE_NAME"], "cluster": c}
def predict(model, X):
    return X
''')
    setup_job(ml, {}, {"train": IRIS / "data" / "train.csv"})  # node-b of node-a, node-b on eth1
    assert cluster() == Cluster(("node-a", "node-b"), "node-b", False, "eth1")
    (ml / "input/config/resourceconfig.json").unlink()
    assert cluster() == Cluster(("algo-1",), "algo-1", True, "eth0")
    assert train.run() == 0
    model = pickle.loads((ml / "model" / "model.pkl").read_bytes())
    assert model == {"hosts": ["algo-1"], "current": "algo-1", "iface": "eth0", "cluster": cluster()}
