"""The training toolkit's ``SM_*`` environment, for user code that expects it (E-01..E-13, C-07)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from rosetta_runtime.cluster import Cluster
from rosetta_runtime.hyperparameters import reserved
from rosetta_runtime.paths import Paths


def _dump(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def toolkit_env(paths: Paths, hyperparameters: Mapping[str, Any], channels: list[str], cluster: Cluster,
                resource: Mapping[str, Any] | None, data_config: Mapping[str, Any]) -> dict[str, str]:
    """The variables, valued as sagemaker-training-toolkit writes them (strings; JSON for the rest).

    The host variables come from ``cluster`` (D7), so a job without resourceconfig.json sees the
    single host ``algo-1`` in them too."""
    hps = {k: v for k, v in hyperparameters.items() if not reserved(k)}
    env: dict[str, Any] = {
        "SM_MODEL_DIR": str(paths.model_dir),
        "SM_CHANNELS": sorted(channels),
        "SM_HPS": hps,
        "SM_OUTPUT_DATA_DIR": str(paths.output_data_dir),
        "SM_OUTPUT_DIR": str(paths.output_dir),
        "SM_OUTPUT_INTERMEDIATE_DIR": str(paths.output_dir / "intermediate"),
        "SM_INPUT_DIR": str(paths.input_dir),
        "SM_INPUT_CONFIG_DIR": str(paths.config_dir),
        "SM_NUM_CPUS": os.cpu_count() or 1,
        "SM_NUM_GPUS": 0,
        "SM_HOSTS": list(cluster.hosts),
        "SM_CURRENT_HOST": cluster.current_host,
        "SM_NETWORK_INTERFACE_NAME": cluster.network_interface,
        "SM_RESOURCE_CONFIG": dict(resource) if resource is not None else {
            "current_host": cluster.current_host, "hosts": list(cluster.hosts),
            "network_interface_name": cluster.network_interface},
        "SM_INPUT_DATA_CONFIG": dict(data_config),
    }
    for ch in channels:
        env[f"SM_CHANNEL_{ch.upper()}"] = str(paths.data_dir / ch)
    for key, value in hps.items():
        env[f"SM_HP_{key.upper()}"] = value
    env["SM_USER_ARGS"] = user_args(hps)
    env["SM_TRAINING_ENV"] = {k[3:].lower(): v for k, v in env.items() if not k.startswith(("SM_HP_", "SM_CHANNEL_"))}
    return {k: _dump(v) for k, v in env.items()}


def user_args(hps: Mapping[str, Any]) -> list[str]:
    """``--key value`` per hyperparameter, keys sorted, one-letter keys as ``-k`` (E-13)."""
    args: list[str] = []
    for key in sorted(hps):
        args += [f"-{key}" if len(key) == 1 else f"--{key}", _dump(hps[key])]
    return args
