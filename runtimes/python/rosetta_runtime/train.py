"""``train``: the /opt/ml training contract around the user's ``fit`` (T-01..T-21).

Every failure path ends in the failure file with the reason first and a non-zero exit.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

from rosetta_runtime import hyperparameters as hyper
from rosetta_runtime.checkpoints import checkpoint_dir
from rosetta_runtime.cluster import Cluster, read_resourceconfig
from rosetta_runtime.data import Channels
from rosetta_runtime.environment import toolkit_env
from rosetta_runtime.errors import DataError, HyperparameterError, RosettaError, UserCodeError, caused_by
from rosetta_runtime.failure import write_failure
from rosetta_runtime.paths import Paths
from rosetta_runtime.user import (
    METADATA_FILE,
    declared_hyperparameters,
    feature_names_of,
    load_user_module,
    n_features_of,
    save_model,
)

EXIT_FAILED = 1
EXIT_STOPPED = 128 + signal.SIGTERM


class Stopped(BaseException):
    """SIGTERM from StopTrainingJob (T-21); a BaseException so user ``except Exception`` can't eat it."""


#: set by the handler: a SIGTERM landing inside a C extension's initialisation comes back wrapped
#: (pybind11: ``ImportError: initialization failed`` from it) or is swallowed by a library's
#: ``except ImportError`` fallback, so the exception alone cannot be trusted to say it was a stop
_sigterm = {"received": False}


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _sigterm["received"] = True
    raise Stopped()


def _is_stop(exc: BaseException) -> bool:
    """A failure after a SIGTERM, or one wrapping the handler's exception, is the stop (T-21)."""
    return _sigterm["received"] or caused_by(exc, Stopped)


def _read_json(path: Path, what: str, required: bool = False) -> Any:
    if not path.is_file():
        if required:
            raise DataError(f"{what} not found at {path}")
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{what} is not valid JSON: {exc}") from exc


def _channels(paths: Paths, data_config: dict[str, Any]) -> list[str]:
    """Channels from inputdataconfig.json (T-04) and on disk; a configured but missing one fails."""
    on_disk = {p.name for p in paths.data_dir.iterdir() if p.is_dir()} if paths.data_dir.is_dir() else set()
    missing = sorted(set(data_config) - on_disk)
    if missing:
        names = ', '.join(map(repr, missing))
        raise DataError(f"channel {names} is configured but {paths.data_dir} has no such folder")
    return sorted(on_disk | set(data_config))


def request_features(module: ModuleType, model: Any, hp: Any, data: Channels) -> list[str] | None:
    """D2: the columns a request carries. The user's ``feature_names(model)``; else, when user code
    read a table and the hyperparameter ``target`` names one of its columns, that table's columns
    minus the target, in order (the table of ``train``, or of the only channel read); else None."""
    declared = feature_names_of(module, model)
    if declared is not None:
        return declared
    target = hp.get("target") if isinstance(hp, dict) else getattr(hp, "target", None)
    table = "train" if "train" in data.read else data.read[0] if len(data.read) == 1 else None
    if not isinstance(target, str) or table is None:
        return None
    columns = [str(c) for c in data[table].columns]
    return [c for c in columns if c != target] if target in columns else None


def metadata(module: ModuleType, model: Any, hp: Any, data: Channels) -> dict[str, Any]:
    """``rosetta.json``: the runtime, the request columns and their count (D2), when it was made."""
    features = request_features(module, model, hp, data)
    return {"runtime": "python", "features": features,
            "n_features": len(features) if features is not None else n_features_of(module, model),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def _stopped(paths: Paths, module: ModuleType | None, exc: BaseException) -> int:
    """T-21: the user's checkpoint hook (if model.py got far enough to define one), then the failure file."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a repeated SIGTERM must not cut the hook short
    hook = getattr(module, "checkpoint", None)
    if callable(hook):
        try:
            hook(checkpoint_dir(paths))
        except Exception as err:
            print(f"rosetta: checkpoint hook failed: {err!r}", file=sys.stderr)
    if module is None:
        detail = f"while {paths.user_file.name} was being imported"
    else:
        detail = "checkpoint hook " + ("called" if callable(hook) else "not defined")
    write_failure(paths.failure, "Stopped", f"received SIGTERM (StopTrainingJob); {detail}", exc)
    return EXIT_STOPPED


def run(paths: Paths | None = None) -> int:
    paths = paths or Paths.from_env()
    _sigterm["received"] = False
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    module = None
    try:
        raw_hp = _read_json(paths.hyperparameters, "hyperparameters.json")
        if not isinstance(raw_hp, dict):
            raise HyperparameterError("hyperparameters.json must hold an object")
        module = load_user_module(paths)
        if _sigterm["received"]:  # it landed in the import and a library's fallback swallowed it
            raise Stopped()
        if not callable(getattr(module, "fit", None)):
            raise UserCodeError(f"{paths.user_file.name} defines no fit(data, hyperparameters)")
        hp = hyper.parse(raw_hp, declared_hyperparameters(module.fit))
        data_config = _read_json(paths.inputdataconfig, "inputdataconfig.json")
        resource = read_resourceconfig(paths)
        channels = _channels(paths, data_config)
        os.environ.update(toolkit_env(paths, hyper.given(raw_hp, hp), channels, Cluster.from_config(resource),
                                      resource, data_config))
        print(f"rosetta: training with channels {channels} and hyperparameters {hyper.to_json(hp)}", flush=True)
        data = Channels(paths.data_dir, channels)
        try:
            model = module.fit(data, hp)
        except (RosettaError, Stopped, MemoryError):
            raise
        except Exception as exc:
            raise UserCodeError(f"fit raised {type(exc).__name__}: {exc}") from exc
        if model is None:
            raise UserCodeError("fit returned None; return the trained model")
        save_model(module, model, paths.model_dir)
        (paths.model_dir / METADATA_FILE).write_text(json.dumps(metadata(module, model, hp, data)))
        print(f"rosetta: model saved to {paths.model_dir}", flush=True)
        return 0
    except Stopped as exc:
        return _stopped(paths, module, exc)
    except RosettaError as exc:
        if _is_stop(exc):
            return _stopped(paths, module, exc)
        write_failure(paths.failure, exc.kind, str(exc), exc)
        return EXIT_FAILED
    except MemoryError as exc:
        if _is_stop(exc):
            return _stopped(paths, module, exc)
        write_failure(paths.failure, "MemoryError", "out of memory during training", exc)
        return EXIT_FAILED
    except Exception as exc:
        if _is_stop(exc):
            return _stopped(paths, module, exc)
        write_failure(paths.failure, "InternalError", f"{type(exc).__name__}: {exc}", exc)
        return EXIT_FAILED
    finally:
        signal.signal(signal.SIGTERM, previous)
