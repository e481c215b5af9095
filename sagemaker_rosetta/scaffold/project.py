"""``rosetta init``: write a new model project (Dockerfile, model file, manifest, data, CI) into a folder.

Templates live in ``templates/`` (package data); ``{{name}}`` marks a value. Everything a template
needs is computed here, from the language and task tables and the generated sample data, so that
the manifest's payloads and record counts always match the data written next to it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from sagemaker_rosetta import images
from sagemaker_rosetta.scaffold.languages import LANGUAGES, TASK_SPECS, Language, Task
from sagemaker_rosetta.scaffold.sample_data import FEATURES, SampleData

#: rows in the JSON and JSON Lines sample payloads of the manifest
JSON_ROWS = 3
JSONLINES_ROWS = 2

_PLACEHOLDER = re.compile(r"(?<!\$)\{\{([a-z_]+)\}\}")


class ScaffoldError(ValueError):
    """The project cannot be written; the message says what to do."""


@dataclass(frozen=True)
class Project:
    """What ``rosetta init`` wrote."""

    root: Path
    image: str
    language: str
    task: str
    files: list[Path]

    def next_commands(self) -> list[str]:
        """The two commands that take the folder to a passing conformance check."""
        return [f"docker build -t {self.image} {_shell_path(self.root)}",
                f"rosetta conform {self.image} -m {_shell_path(self.root / 'conformance.toml')}"]


def _shell_path(p: Path) -> str:
    text = str(p)
    return text if re.fullmatch(r"[\w./@%+=:,-]+", text) else "'" + text.replace("'", "'\\''") + "'"


def image_name(folder: Path) -> str:
    """A Docker repository name from the folder's name (lowercase, ``[a-z0-9._-]``), tag ``latest``."""
    name = re.sub(r"[^a-z0-9._-]+", "-", folder.resolve().name.lower())
    name = re.sub(r"[._-]{2,}", "-", name).strip("._-")
    return f"{name or 'my-model'}:latest"


def render(text: str, values: Mapping[str, str]) -> str:
    """Replace every ``{{name}}``; an unknown name is a bug in the template (KeyError)."""
    def sub(m: re.Match[str]) -> str:
        if m.group(1) not in values:
            raise KeyError(f"template value {{{{{m.group(1)}}}}} is not defined")
        return values[m.group(1)]

    return _PLACEHOLDER.sub(sub, text)


def template(*parts: str) -> str:
    return resources.files("sagemaker_rosetta.scaffold").joinpath("templates", *parts).read_text()


def toml_value(v: Any) -> str:
    """A TOML value for the manifest (inline tables of scalars are all it needs)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string of ASCII text is a TOML basic string
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML form for {v!r}")


def python_literal(mapping: Mapping[str, Any]) -> str:
    """A dict literal for generated Python code (``json.dumps`` would write ``true`` for ``True``)."""
    return "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v) if isinstance(v, str) else repr(v)}"
                           for k, v in mapping.items()) + "}"


def manifest_hyperparameters(lang: Language, task: Task) -> dict[str, Any]:
    return {**lang.hyperparameters[task.name], "target": task.target}


#: ``log_metric("name", …)`` in a model template (Python, R and Julia spell it alike)
_LOGGED = re.compile(r"""log_metric\(\s*["']([^"']+)["']""")


def logged_metrics(lang: Language, task: Task) -> list[str]:
    """The metric names the model file logs: the pipeline declares exactly these (``p.training(metrics=…)``)."""
    source = template(lang.name, f"{task.name}{Path(lang.model_file).suffix}.tmpl")
    return list(dict.fromkeys(_LOGGED.findall(source)))


def values_for(lang: Language, task: Task, data: SampleData, image: str) -> dict[str, str]:
    runtime_image = images.IMAGES[lang.runtime].tag
    repo = image.rsplit(":", 1)[0]
    hps = manifest_hyperparameters(lang, task)
    sdk_json = {k: json.dumps(v) for k, v in hps.items()}  # the SDK's json.dumps encoding (T-02)
    expected = "".join(f"{json.dumps(k)} = {json.dumps(v)}\n" for k, v in lang.expected_failures.items())
    return {
        "name": repo,
        "image": image,
        "image_repo": repo,
        "container": f"{re.sub(r'[^a-z0-9-]', '-', repo.rsplit('/', 1)[-1])}-serve",
        "pipeline_name": re.sub(r"[^a-z0-9-]+", "-", repo.rsplit("/", 1)[-1]).strip("-")[:50] or "rosetta-model",
        "language": lang.name,
        "title": lang.title,
        "task": task.name,
        "target": task.target,
        "runtime": lang.runtime,
        "runtime_image": runtime_image,
        "runtime_repo_name": runtime_image.rsplit("/", 1)[-1],
        "model_file": lang.model_file,
        "features": ", ".join(FEATURES),
        "n_train": str(len(data.train_rows)),
        "n_test": str(len(data.test_rows)),
        "hyperparameters": toml_value(hps),
        "bad_hyperparameters": toml_value(lang.bad_hyperparameters),
        "sigterm_hyperparameters": toml_value(lang.sigterm_hyperparameters),
        "sigterm_repeat": str(lang.sigterm_repeat),
        "sigterm_timeout": repr(lang.sigterm_timeout),
        "csv_records": str(len(data.test_rows)),
        "csv_header": ",".join(FEATURES),
        "json_body": toml_value(data.json_body(JSON_ROWS)),
        "json_records": str(min(JSON_ROWS, len(data.test_rows))),
        "jsonlines_body": toml_value(data.jsonlines_body(JSONLINES_ROWS)),
        "jsonlines_records": str(min(JSONLINES_ROWS, len(data.test_rows))),
        "json_row": data.json_body(1),
        "hp_json": json.dumps(sdk_json),
        "pipeline_hyperparameters": python_literal(hps),
        "pipeline_metrics": json.dumps(logged_metrics(lang, task)),  # a list of str: valid Python as JSON
        "expected_failures": expected,
        "expected_failures_row": "\n| `expected-failures.toml` | clauses known to fail here, each with its reason |"
        if lang.expected_failures else "",
        "language_notes": lang.notes,
    }


def files_for(lang: Language, task: Task, data: SampleData, values: Mapping[str, str]) -> dict[str, str]:
    """Relative path → content of every file of the project."""
    files = {
        lang.model_file: render(template(lang.name, f"{task.name}{Path(lang.model_file).suffix}.tmpl"), values),
        "Dockerfile": render(template("common", "Dockerfile.tmpl"), values),
        ".dockerignore": render(template("common", "dockerignore.tmpl"), values),
        ".gitignore": template("common", "gitignore.tmpl"),
        "conformance.toml": render(template("common", "conformance.toml.tmpl"), values),
        "README.md": render(template("common", "README.md.tmpl"), values),
        "pipeline.py": render(template("common", "pipeline.py.tmpl"), values),
        ".github/workflows/rosetta.yml": render(template("common", "workflow.yml.tmpl"), values),
        "data/train.csv": data.train_csv(),
        "data/test_features.csv": data.test_features_csv(),
    }
    if lang.expected_failures:
        files["expected-failures.toml"] = render(template("common", "expected-failures.toml.tmpl"), values)
    return files


def _existing_entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def init_project(language: str, folder: Path | str, *, task: str = "classification",
                 force: bool = False, image: str | None = None) -> Project:
    """Write a new project for ``language`` into ``folder`` (created if missing).

    A folder that exists and is not empty is refused unless ``force``; then only the project's
    own files are (over)written, anything else in the folder is left alone.
    """
    if language not in LANGUAGES:
        raise ScaffoldError(f"unknown language {language!r}; choose one of: {', '.join(LANGUAGES)}")
    if task not in TASK_SPECS:
        raise ScaffoldError(f"unknown task {task!r}; choose one of: {', '.join(TASK_SPECS)}")
    root = Path(folder)
    if root.exists() and not root.is_dir():
        raise ScaffoldError(f"{root} is a file; choose a folder name")
    if root.is_dir() and not force:
        existing = _existing_entries(root)
        if existing:
            shown = ", ".join(existing[:3]) + (", …" if len(existing) > 3 else "")
            raise ScaffoldError(f"{root} is not empty ({shown}); choose a new folder, "
                                "or pass --force to write the project's files over it")
    lang, spec = LANGUAGES[language], TASK_SPECS[task]
    data = spec.data()
    image = image or image_name(root)
    values = values_for(lang, spec, data, image)
    written = []
    for rel, content in files_for(lang, spec, data, values).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        written.append(path)
    return Project(root, image, language, task, written)
