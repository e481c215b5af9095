"""Training in-process on a temporary /opt/ml: success, SM_* env, and every failure path (T-*)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rosetta_runtime import train

from .conftest import IRIS

IRIS_MODEL = (IRIS / "python" / "model.py").read_text()


def setup_job(ml: Path, hyperparameters: dict[str, str], channels: dict[str, Path | None]) -> None:
    (ml / "input/config/hyperparameters.json").write_text(json.dumps(hyperparameters))
    config = {}
    for name, src in channels.items():
        config[name] = {"TrainingInputMode": "File"}  # no ContentType: must not be required (T-04)
        if src is not None:
            (ml / "input/data" / name).mkdir(parents=True)
            shutil.copy(src, ml / "input/data" / name / src.name)
    (ml / "input/config/inputdataconfig.json").write_text(json.dumps(config))
    (ml / "input/config/resourceconfig.json").write_text(
        json.dumps({"current_host": "node-b", "hosts": ["node-a", "node-b"], "network_interface_name": "eth1"}))


def failure_of(ml: Path) -> list[str]:
    return (ml / "output" / "failure").read_text().splitlines()


def test_iris_trains_and_sets_toolkit_env(ml: Path, user_code: Callable[[str], Path],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    user_code(IRIS_MODEL)
    setup_job(ml, {"n_estimators": "20", "target": '"species"'}, {"train": IRIS / "data" / "train.csv"})
    assert train.run() == 0
    assert not (ml / "output" / "failure").exists()
    meta = json.loads((ml / "model" / "rosetta.json").read_text())
    assert meta["runtime"] == "python" and meta["n_features"] == 4
    assert "#metric train_accuracy=" in capsys.readouterr().out  # T-20
    assert os.environ["SM_CHANNELS"] == '["train"]' and os.environ["SM_HP_N_ESTIMATORS"] == "20"
    assert os.environ["SM_CURRENT_HOST"] == "node-b" and json.loads(os.environ["SM_HOSTS"]) == ["node-a", "node-b"]
    assert os.environ["SM_CHANNEL_TRAIN"] == str(ml / "input/data/train")
    assert json.loads(os.environ["SM_USER_ARGS"]) == ["--n_estimators", "20", "--target", "species"]  # given only
    assert json.loads(os.environ["SM_HPS"]) == {"n_estimators": 20, "target": "species"}  # D4: no defaults
    assert meta["features"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]  # D2
    assert json.loads(os.environ["SM_TRAINING_ENV"])["channels"] == ["train"]


def test_both_encodings_same_model(ml: Path, user_code: Callable[[str], Path]) -> None:  # T-02
    user_code(IRIS_MODEL)
    X = np.loadtxt(IRIS / "data" / "test_features.csv", delimiter=",")
    outputs = []
    for hp in ({"n_estimators": "7", "min_samples_leaf": "2", "target": "species"},
               {"n_estimators": "7", "min_samples_leaf": "2", "target": '"species"'}):
        shutil.rmtree(ml / "input" / "data")
        (ml / "input" / "data").mkdir()
        setup_job(ml, hp, {"train": IRIS / "data" / "train.csv"})
        assert train.run() == 0
        model = pickle.loads((ml / "model" / "model.pkl").read_bytes())
        outputs.append(model.predict(X).tolist())
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("case, first_line", [
    ("bad_hyperparameter", "HyperparameterError: n_estimators: expected an integer, got 'many'"),
    ("missing_channel", "DataError: channel 'train' is configured but"),
    ("unreadable_csv", "DataError: cannot read train/train.csv as CSV"),
    ("user_exception", 'UserCodeError: fit raised KeyError: "[\'no_such_column\'] not found'),
    ("memory", "MemoryError: out of memory during training"),
    ("returns_none", "UserCodeError: fit returned None"),
    ("syntax_error", "UserCodeError: model.py failed to import: SyntaxError"),
])
def test_failure_reason_first(ml: Path, user_code: Callable[[str], Path], tmp_path: Path,
                              case: str, first_line: str) -> None:
    source, hp, data = IRIS_MODEL, {"n_estimators": "5"}, IRIS / "data" / "train.csv"
    if case == "bad_hyperparameter":
        hp = {"n_estimators": "many"}
    elif case == "unreadable_csv":
        data = tmp_path / "train.csv"
        data.write_bytes(b'a,b\n"1,2\n\xff\xfe,\x00\n' * 3)
    elif case == "user_exception":
        hp["target"] = "no_such_column"
    elif case == "memory":
        source += "\ndef fit(data, hp):\n    raise MemoryError()\n"
    elif case == "returns_none":
        source += "\ndef fit(data, hp):\n    return None\n"
    elif case == "syntax_error":
        source += "\ndef broken(:\n"
    user_code(source)
    setup_job(ml, hp, {"train": None if case == "missing_channel" else data})
    assert train.run() == train.EXIT_FAILED
    lines = failure_of(ml)
    assert lines[0].startswith(first_line), lines[0]
    assert lines[1] == ""  # reason, blank line, then details


def test_sigterm_calls_checkpoint_and_exits_143(ml: Path, user_code: Callable[[str], Path]) -> None:  # T-21, T-13
    user_code('''
import os, signal, time
def fit(data, hp):
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
    return "never"
def predict(model, X):
    return X
def checkpoint(checkpoint_dir):
    (checkpoint_dir / "state.txt").write_text("epoch 3")
''')
    setup_job(ml, {}, {"train": IRIS / "data" / "train.csv"})
    assert train.run() == train.EXIT_STOPPED == 143
    assert (ml / "checkpoints" / "state.txt").read_text() == "epoch 3"
    assert failure_of(ml)[0] == "Stopped: received SIGTERM (StopTrainingJob); checkpoint hook called"


#: a SIGTERM landing in a C extension's initialisation (scikit-learn's import, T-21): pybind11 re-raises
#: the handler's exception as ``ImportError: initialization failed`` from it; a library may then fall
#: back quietly (``except ImportError``), or the chain may be lost. model.py plays each part for real:
#: it sends itself the SIGTERM and handles the handler's exception as those layers do.
SIGTERM_IN_IMPORT = '''
import os, signal

def _extension_init():
    os.kill(os.getpid(), signal.SIGTERM)  # the handler runs inside this call
    return sum(range(1000))

failed = None
try:
    _extension_init()
except BaseException as exc:
    failed = exc
    {handling}
if failed is not None and {fail_after}:
    raise ImportError("initialization failed")  # raised afresh: no __cause__, no __context__

def fit(data, hp):
    return "trained anyway"
def predict(model, X):
    return X
'''


IMPORT_STOPS = {  # id -> (handling, fail_after)
    "wrapped": ('raise ImportError("initialization failed") from exc', False),
    "chain-lost": ("pass", True),
    "swallowed": ("pass  # a fallback import", False),
}


@pytest.mark.parametrize("case, reason", [
    ("wrapped", "Stopped: received SIGTERM (StopTrainingJob); while model.py was being imported"),
    ("chain-lost", "Stopped: received SIGTERM (StopTrainingJob); while model.py was being imported"),
    ("swallowed", "Stopped: received SIGTERM (StopTrainingJob); checkpoint hook not defined"),
])
def test_sigterm_while_model_py_is_imported_is_a_stop(ml: Path, user_code: Callable[[str], Path],
                                                      case: str, reason: str) -> None:  # T-21
    handling, fail_after = IMPORT_STOPS[case]
    user_code(SIGTERM_IN_IMPORT.format(handling=handling, fail_after=fail_after))
    setup_job(ml, {}, {"train": IRIS / "data" / "train.csv"})
    assert train.run() == train.EXIT_STOPPED == 143
    lines = failure_of(ml)
    assert lines[0] == reason
    assert not (ml / "model" / "model.pkl").exists()  # never a silent success after a stop


def test_an_import_error_without_sigterm_stays_a_user_code_error(ml: Path, user_code: Callable[[str], Path]) -> None:
    """After a stopped run in the same process, a plain failing import is the user's error again."""
    user_code(SIGTERM_IN_IMPORT.format(handling="raise ImportError('initialization failed') from exc",
                                       fail_after=False))
    setup_job(ml, {}, {"train": IRIS / "data" / "train.csv"})
    assert train.run() == 143
    user_code("raise ImportError('initialization failed')\n")
    assert train.run() == train.EXIT_FAILED
    assert failure_of(ml)[0] == "UserCodeError: model.py failed to import: ImportError: initialization failed"


@pytest.mark.parametrize("case", ["wrapped", "chain-lost", "swallowed"])
def test_serve_stopped_while_model_py_is_imported_exits_quietly(ml: Path, user_code: Callable[[str], Path],
                                                                case: str) -> None:  # S-13
    """``serve`` stopped during the import of model.py is a stop (exit 0), not `cannot serve`."""
    handling, fail_after = IMPORT_STOPS[case]
    code = user_code(SIGTERM_IN_IMPORT.format(handling=handling, fail_after=fail_after))
    env = {**os.environ, "ROSETTA_CODE_DIR": str(code), "SAGEMAKER_BIND_TO_PORT": "0",
           "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
    res = subprocess.run([sys.executable, "-c", "import sys; from rosetta_runtime import entrypoint; "
                          "sys.exit(entrypoint.main(['rosetta', 'serve']))"],
                         env=env, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    assert "cannot serve" not in res.stderr
