"""Draw a pipeline's DAG: Mermaid text always, SVG/PNG through Graphviz ``dot`` when installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from rosetta_orchestrator.api import runtime_of
from rosetta_orchestrator.local.plan import build_plan

COLORS = {"python": "#3572A5", "r": "#198CE7", "julia": "#9558B2", "other": "#777777"}


def nodes(definition: dict[str, Any], runtimes: dict[str, str]) -> list[dict[str, str]]:
    """Each step (branch steps included) with its type, image (parameter defaults resolved) and runtime."""
    params = {p["Name"]: p.get("DefaultValue") for p in definition.get("Parameters") or []}
    plan = build_plan(definition)
    models = {n: s.definition for n, s in plan.steps.items() if s.type == "Model"}
    out = []
    for name in plan.order():
        s = plan.steps[name].definition
        image = _image(s, params, models)
        out.append({"name": name, "type": s["Type"], "image": image,
                    "runtime": runtimes.get(name) or runtime_of(image)})
    return out


def edges(definition: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(from, to, label): data and DependsOn edges unlabelled, a condition's branches "if"/"else"."""
    plan = build_plan(definition)
    out = []
    for name in plan.order():
        s = plan.steps[name]
        out += [(d, name, "") for d in sorted(s.deps)]
        if s.gate:
            out.append((s.gate[0], name, "if" if s.gate[1] else "else"))
    return out


def _value(v: Any, params: dict[str, Any]) -> str:
    if isinstance(v, dict) and isinstance(v.get("Get"), str) and v["Get"].startswith("Parameters."):
        return str(params.get(v["Get"].split(".", 1)[1], v["Get"]))
    return v if isinstance(v, str) else "(expression)" if v else ""


def _image(step: dict[str, Any], params: dict[str, Any], models: dict[str, Any]) -> str:
    a = step.get("Arguments") or {}
    if step["Type"] == "Training":
        return _value(a.get("AlgorithmSpecification", {}).get("TrainingImage"), params)
    if step["Type"] == "Processing":
        return _value(a.get("AppSpecification", {}).get("ImageUri"), params)
    if step["Type"] == "Model":
        container = a.get("PrimaryContainer") or {}
        return _value(container.get("Image") or container.get("ModelPackageName"), params)
    if step["Type"] == "RegisterModel":
        containers = (a.get("InferenceSpecification") or {}).get("Containers") or [{}]
        return _value(containers[0].get("Image"), params)
    if step["Type"] == "Transform":
        ref = a.get("ModelName")
        if isinstance(ref, dict) and str(ref.get("Get", "")).startswith("Steps."):
            model = models.get(str(ref["Get"]).split(".")[1])
            if model:
                return _image(model, params, models)
    return ""


def _id(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def mermaid(definition: dict[str, Any], runtimes: dict[str, str]) -> str:
    lines = ["flowchart LR"]
    for n in nodes(definition, runtimes):
        lines.append(f'  {_id(n["name"])}["{n["name"]}<br/>{n["type"]} · {n["runtime"]}<br/><small>'
                     f'{n["image"]}</small>"]:::{n["runtime"]}')
    for a, b, label in edges(definition):
        lines.append(f"  {_id(a)} -->|{label}| {_id(b)}" if label else f"  {_id(a)} --> {_id(b)}")
    lines.extend(f"  classDef {rt} stroke:{color},stroke-width:2px" for rt, color in COLORS.items())
    return "\n".join(lines) + "\n"


def dot(definition: dict[str, Any], runtimes: dict[str, str]) -> str:
    lines = ["digraph pipeline {", "  rankdir=LR;", '  node [shape=box, style="rounded,filled", fontname="Helvetica"];']
    for n in nodes(definition, runtimes):
        color = COLORS.get(n["runtime"], COLORS["other"])
        label = f'{n["name"]}\\n{n["type"]} · {n["runtime"]}\\n{n["image"]}'
        lines.append(f'  "{n["name"]}" [label="{label}", fillcolor="{color}33", color="{color}"];')
    for a, b, label in edges(definition):
        lines.append(f'  "{a}" -> "{b}" [label="{label}", style=dashed];' if label else f'  "{a}" -> "{b}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot_text: str, out: Path) -> None:
    """Write ``out`` (.svg or .png) with Graphviz; a clear error when ``dot`` is missing."""
    exe = shutil.which("dot")
    if not exe:
        raise FileNotFoundError("Graphviz `dot` is not installed (Debian: apt-get install graphviz); "
                                "the Mermaid text above works without it")
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in ("svg", "png"):
        raise ValueError(f"{out}: choose a .svg or .png file")
    subprocess.run([exe, f"-T{fmt}", "-o", str(out)], input=dot_text, text=True, check=True)
