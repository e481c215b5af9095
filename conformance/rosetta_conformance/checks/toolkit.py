"""Toolkit profile: the ``SM_*`` environment user code sees during training (E-01 … E-09).

Black-box, the environment of user code is only visible through what the code writes:
the manifest's ``[toolkit] env_file`` names a JSON object of the ``SM_*`` variables the
image's training code dumps (relative to /opt/ml, e.g. ``output/data/sm_env.json``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rosetta_conformance import wire
from rosetta_conformance.checks import check
from rosetta_conformance.harness import Harness, TrainRun
from rosetta_conformance.outcome import Outcome, Skip


def _env(h: Harness) -> tuple[TrainRun, dict[str, str]]:
    h.require_training()
    if not h.manifest.toolkit_env_file:
        raise Skip("no [toolkit] env_file in the manifest: the SM_* environment is not observable")
    run = h.main_training()
    path = run.root / h.manifest.toolkit_env_file
    if not path.is_file():
        return run, {}
    return run, {str(k): str(v) for k, v in json.loads(path.read_text()).items()}


def _expect(h: Harness) -> dict[str, Callable[[str], bool] | str]:
    tr = h.manifest.training
    assert tr is not None
    chans = sorted(tr.channels)

    def js(expected: Any) -> Callable[[str], bool]:
        def test(v: str) -> bool:
            try:
                return bool(json.loads(v) == expected)
            except ValueError:
                return False
        return test
    return {
        "SM_MODEL_DIR": "/opt/ml/model",
        "SM_CHANNELS": js(chans),
        **{f"SM_CHANNEL_{c.upper()}": f"/opt/ml/input/data/{c}" for c in chans},
        "SM_HPS": js(json.loads(json.dumps(tr.hyperparameters))),
        "SM_OUTPUT_DATA_DIR": "/opt/ml/output/data", "SM_OUTPUT_DIR": "/opt/ml/output",
        "SM_INPUT_DIR": "/opt/ml/input", "SM_INPUT_CONFIG_DIR": "/opt/ml/input/config",
        "SM_HOSTS": js(["algo-1"]), "SM_CURRENT_HOST": "algo-1",
    }


def _compare(h: Harness, names: list[str]) -> Outcome:
    _, env = _env(h)
    expect = _expect(h)
    wrong = []
    for name in names:
        for key, want in expect.items():
            if key == name or (name.endswith("_") and key.startswith(name)):
                got = env.get(key)
                ok = got is not None and (want(got) if callable(want) else got == want)
                if not ok:
                    wrong.append(f"{key}={got!r}")
    shown = {k: v for k, v in env.items() if any(k.startswith(n.rstrip("_")) for n in names)}
    return Outcome(not wrong, "; ".join(wrong), f"env dump {h.manifest.toolkit_env_file}", wire.short(str(shown)))


@check("E-01")
def sm_model_dir(h: Harness) -> Outcome:
    return _compare(h, ["SM_MODEL_DIR"])


@check("E-02")
def sm_channels(h: Harness) -> Outcome:
    return _compare(h, ["SM_CHANNELS"])


@check("E-03")
def sm_channel_x(h: Harness) -> Outcome:
    return _compare(h, ["SM_CHANNEL_"])


@check("E-04")
def sm_hps(h: Harness) -> Outcome:
    return _compare(h, ["SM_HPS"])


@check("E-06")
def sm_output(h: Harness) -> Outcome:
    return _compare(h, ["SM_OUTPUT_DATA_DIR", "SM_OUTPUT_DIR"])


@check("E-07")
def sm_input(h: Harness) -> Outcome:
    return _compare(h, ["SM_INPUT_DIR", "SM_INPUT_CONFIG_DIR"])


@check("E-09")
def sm_hosts(h: Harness) -> Outcome:
    return _compare(h, ["SM_HOSTS", "SM_CURRENT_HOST"])


def _typed_matches(got: str, want: Any) -> bool:
    """A toolkit string for a decoded value: strings as they are, anything else JSON."""
    if isinstance(want, str):
        return got == want
    try:
        return bool(json.loads(got) == want)
    except ValueError:
        return False


@check("E-05")
def sm_hp_x(h: Harness) -> Outcome:
    _, env = _env(h)
    tr = h.manifest.training
    assert tr is not None
    wrong, shown = [], []
    for key, value in tr.hyperparameters.items():
        name = f"SM_HP_{key.upper()}"
        got = env.get(name)
        shown.append(f"{name}={got!r}")
        if got is None or not _typed_matches(got, value):
            wrong.append(f"{name}={got!r} (want {value!r})")
    return Outcome(not wrong, "; ".join(wrong), f"env dump {h.manifest.toolkit_env_file}", wire.short("; ".join(shown)))


@check("E-11")
def sm_config_files(h: Harness) -> Outcome:
    run, env = _env(h)
    cfg = run.root / "input" / "config"
    wrong, shown = [], []
    for name, file in (("SM_RESOURCE_CONFIG", "resourceconfig.json"), ("SM_INPUT_DATA_CONFIG", "inputdataconfig.json")):
        got = env.get(name)
        shown.append(f"{name}={got!r}")
        if got is None or not _typed_matches(got, json.loads((cfg / file).read_text())):
            wrong.append(f"{name} is not {file} as JSON: {got!r}")
    return Outcome(not wrong, "; ".join(wrong), f"env dump {h.manifest.toolkit_env_file}", wire.short("; ".join(shown)))


def _arg_value_ok(got: str, value: Any) -> bool:
    """The toolkit writes ``str(value)``; JSON is accepted for the values where the two differ."""
    if isinstance(value, str):
        return got == value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return got in (str(value), json.dumps(value), json.dumps(value, separators=(",", ":"), sort_keys=True))
    try:
        return float(got) == float(value)
    except ValueError:
        return False


@check("E-13")
def sm_user_args(h: Harness) -> Outcome:
    _, env = _env(h)
    tr = h.manifest.training
    assert tr is not None
    raw = env.get("SM_USER_ARGS")
    sent = f"env dump {h.manifest.toolkit_env_file}"
    try:
        args = json.loads(raw) if raw is not None else None
    except ValueError:
        args = None
    if not isinstance(args, list) or len(args) % 2:
        return Outcome(False, "SM_USER_ARGS is not a JSON list of `--key value` pairs", sent, repr(raw))
    hps = {k: v for k, v in tr.hyperparameters.items() if not k.startswith("sagemaker_")}
    names = [f"-{k}" if len(k) == 1 else f"--{k}" for k in sorted(hps)]
    if args[0::2] != names:
        return Outcome(False, f"names should be {names} (keys sorted)", sent, wire.short(str(args)))
    wrong = [f"{n} {v!r}" for n, v, k in zip(args[0::2], args[1::2], sorted(hps), strict=True)
             if not _arg_value_ok(str(v), hps[k])]
    return Outcome(not wrong, ("values differ: " + "; ".join(wrong)) if wrong else "", sent, wire.short(str(args)))
