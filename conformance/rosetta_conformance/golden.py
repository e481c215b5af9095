"""Golden cases (conformance/golden/): load them and judge an answer, the same way for every image.

The cases are the runtime contract as data (``conformance/golden/README.md``): each language's test
framework runs them in-process; :mod:`rosetta_conformance.golden_images` runs them against the
images over HTTP with the functions here. Records compare as parsed values (numbers with a
relative tolerance of 1e-9, strings exactly), messages exactly or by the case's documented pattern.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagemaker_rosetta.containers import Response

LANGUAGES = ("python", "r", "julia")
REL_TOL = 1e-9
TEXT_PLAIN = "text/plain; charset=utf-8"


def golden_dir() -> Path:
    """``conformance/golden`` of the checkout this package runs from."""
    return Path(__file__).resolve().parents[1] / "golden"


@dataclass(frozen=True)
class Setup:
    name: str
    program: str
    hyperparameters: dict[str, str]
    channels: dict[str, dict[str, str]]
    inputdataconfig: dict[str, Any] | None = None


@dataclass(frozen=True)
class Case:
    id: str
    clause: str
    setup: str
    env: dict[str, str]
    request: dict[str, Any]
    expect: dict[str, Any]

    @property
    def group(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """Cases of one group share a server: the same trained setup and serving environment."""
        return self.setup, tuple(sorted(self.env.items()))

    @property
    def body(self) -> bytes:
        """The request body: text or base64 bytes, repeated ``body_repeat`` times (a 6 MiB body in one line)."""
        if "body_b64" in self.request:
            one = base64.b64decode(self.request["body_b64"])
        else:
            one = str(self.request.get("body", "")).encode()
        return one * int(self.request.get("body_repeat", 1))

    @property
    def headers(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.request.get("headers") or {}).items()}


#: ``resourceconfig`` absent from a training case: the single-host file
DEFAULT_RESOURCECONFIG = {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}


@dataclass(frozen=True)
class TrainingCase:
    id: str
    clause: str
    program: str
    hyperparameters: dict[str, str]
    channels: dict[str, dict[str, str]]
    #: one expectation per ``train`` run on the same /opt/ml (``runs``; one run for ``expect``)
    runs: list[dict[str, Any]]
    inputdataconfig: dict[str, Any] | None = None
    #: the exact resourceconfig.json; None: no such file
    resourceconfig: dict[str, Any] | None = field(default_factory=lambda: dict(DEFAULT_RESOURCECONFIG))
    #: the exact checkpointconfig.json with ``{ml}`` standing for the /opt/ml root; None: no file
    checkpointconfig: dict[str, Any] | None = None

    @property
    def expect(self) -> dict[str, Any]:
        return self.runs[0]


@dataclass(frozen=True)
class ModelSpec:
    """One model of a multi-model setup, placed at ``<models root>/<name>/model`` (golden README)."""

    name: str
    #: the serving.json setup whose trained model folder is copied; None for an empty folder
    setup: str | None
    corrupt: bool = False
    pad_mb: int = 0


@dataclass(frozen=True)
class MultiSetup:
    name: str
    program: str
    models: dict[str, ModelSpec]


@dataclass(frozen=True)
class MultiCase:
    """A multimodel.json case: ordered request steps against one server in multi-model mode."""

    id: str
    clause: str
    setup: str
    env: dict[str, str]
    steps: list[dict[str, Any]]

    @property
    def group(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return self.setup, tuple(sorted(self.env.items()))

    def step(self, i: int, models_root: str) -> Case:
        """Step ``i`` as a serving case, with ``{models}`` replaced by the models root the server sees."""
        raw = self.steps[i]
        request = dict(raw["request"])
        if "body" in request:
            request["body"] = str(request["body"]).replace(MODELS, models_root)
        return Case(f"{self.id}[{i + 1}]", self.clause, self.setup, self.env, request,
                    substitute(dict(raw["expect"]), models_root))


#: the placeholder of multimodel.json for the models root
MODELS = "{models}"


def substitute(value: Any, models_root: str) -> Any:
    """``{models}`` replaced in every string of ``value``, at any depth."""
    if isinstance(value, str):
        return value.replace(MODELS, models_root)
    if isinstance(value, list):
        return [substitute(v, models_root) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, models_root) for k, v in value.items()}
    return value


@dataclass
class Golden:
    setups: dict[str, Setup]
    cases: list[Case]
    training: list[TrainingCase] = field(default_factory=list)
    multi_setups: dict[str, MultiSetup] = field(default_factory=dict)
    multimodel: list[MultiCase] = field(default_factory=list)


def _hp_file(values: Mapping[str, Any]) -> dict[str, str]:
    """hyperparameters.json as SageMaker writes it: every value a string."""
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def load(root: Path | None = None) -> Golden:
    """``serving.json`` (and ``training.json`` when present) of ``root`` (default :func:`golden_dir`)."""
    root = root or golden_dir()
    doc = json.loads((root / "serving.json").read_text())
    setups = {name: Setup(name, str(s["program"]), _hp_file(s.get("hyperparameters", {})),
                          {ch: dict(files) for ch, files in s.get("channels", {}).items()},
                          s.get("inputdataconfig"))
              for name, s in doc["setups"].items()}
    cases = [Case(str(c["id"]), str(c.get("clause", "")), str(c["setup"]),
                  {str(k): str(v) for k, v in (c.get("env") or {}).items()}, dict(c["request"]), dict(c["expect"]))
             for c in doc["cases"]]
    unknown = sorted({c.setup for c in cases} - set(setups))
    if unknown:
        raise ValueError(f"serving.json: cases name unknown setups {unknown}")
    training: list[TrainingCase] = []
    if (root / "training.json").is_file():
        tdoc = json.loads((root / "training.json").read_text())
        training = [TrainingCase(str(c["id"]), str(c.get("clause", "")), str(c.get("program", "plain")),
                                 _hp_file(c.get("hyperparameters", {})),
                                 {ch: dict(files) for ch, files in c.get("channels", {}).items()},
                                 [dict(r["expect"]) for r in c["runs"]] if "runs" in c else [dict(c["expect"])],
                                 c.get("inputdataconfig"),
                                 c["resourceconfig"] if "resourceconfig" in c else dict(DEFAULT_RESOURCECONFIG),
                                 c.get("checkpointconfig"))
                    for c in tdoc["cases"]]
    multi_setups: dict[str, MultiSetup] = {}
    multimodel: list[MultiCase] = []
    if (root / "multimodel.json").is_file():
        mdoc = json.loads((root / "multimodel.json").read_text())
        for name, m in mdoc["setups"].items():
            models = {str(k): ModelSpec(str(k), None if spec.get("empty") else str(spec["setup"]),
                                        bool(spec.get("corrupt")), int(spec.get("pad_mb", 0)))
                      for k, spec in m["models"].items()}
            unknown_models = sorted({str(s.setup) for s in models.values() if s.setup} - set(setups))
            if unknown_models:
                raise ValueError(f"multimodel.json: setup {name!r} names unknown serving setups {unknown_models}")
            multi_setups[name] = MultiSetup(name, str(m["program"]), models)
        multimodel = [MultiCase(str(c["id"]), str(c.get("clause") or c.get("decision") or ""), str(c["setup"]),
                                {str(k): str(v) for k, v in (c.get("env") or {}).items()},
                                [dict(step) for step in c["steps"]])
                      for c in mdoc["cases"]]
        unknown = sorted({c.setup for c in multimodel} - set(multi_setups))
        if unknown:
            raise ValueError(f"multimodel.json: cases name unknown setups {unknown}")
    return Golden(setups, cases, training, multi_setups, multimodel)


def expected_differences(lang: str, root: Path | None = None) -> dict[str, str]:
    """``{case id: reason}`` for ``lang``; a reason is required."""
    path = (root or golden_dir()) / "expected-differences" / f"{lang}.json"
    if not path.is_file():
        return {}
    doc = json.loads(path.read_text())
    if not isinstance(doc, dict) or not all(isinstance(v, str) and v.strip() for v in doc.values()):
        raise ValueError(f"{path}: maps case ids to a non-empty reason")
    return {str(k): str(v) for k, v in doc.items()}


# -- judging an answer ---------------------------------------------------------------------------
def media_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


def parse_records(body: bytes, content_type: str) -> list[list[Any]]:
    """Output records by the response's media type; a scalar record is a one-element list."""
    ctype = media_type(content_type)
    text = body.decode("utf-8")
    if ctype == "application/json":
        doc = json.loads(text)
        items = doc["predictions"] if isinstance(doc, dict) else doc
        return [x if isinstance(x, list) else [x] for x in items]
    lines = [ln for ln in text.split("\n") if ln != ""]
    if ctype in ("application/jsonlines", "application/x-jsonlines", "application/jsonl"):
        out = [json.loads(ln) for ln in lines]
        return [x if isinstance(x, list) else [x] for x in out]
    return [[_field(f) for f in ln.rstrip("\r").split(",")] for ln in lines]


def _field(text: str) -> Any:
    """A CSV field: a number when it reads as one, else the string."""
    try:
        return float(text)
    except ValueError:
        return text


def same_value(got: Any, want: Any) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want or (isinstance(got, str) and got.lower() == str(want).lower())
    if isinstance(want, int | float):
        if isinstance(got, str):
            try:
                got = float(got)
            except ValueError:
                return False
        if not isinstance(got, int | float):
            return False
        return math.isclose(float(got), float(want), rel_tol=REL_TOL, abs_tol=0.0) or got == want
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(same_value, got, want))
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(same_value(got[k], v)
                                                                           for k, v in want.items())
    return bool(got == want)


def judge(case: Case, r: Response) -> list[str]:
    """Every way the answer differs from the case's expectation (empty: it passes)."""
    e = case.expect
    problems: list[str] = []
    if r.status != e["status"]:
        problems.append(f"status {r.status}, want {e['status']}")
    ctype = r.headers.get("content-type", "")
    text = r.body.decode("utf-8", errors="replace")
    if "message" in e:
        if text != e["message"] + "\n":
            problems.append(f"message {text!r}, want {e['message'] + chr(10)!r}")
        if ctype.replace(" ", "").lower() != TEXT_PLAIN.replace(" ", ""):
            problems.append(f"content type {ctype!r}, want {TEXT_PLAIN!r}")
    if "message_pattern" in e:
        first = text.split("\n", 1)[0]
        if not re.fullmatch(e["message_pattern"], first):
            problems.append(f"message {first!r} does not match {e['message_pattern']!r}")
    if "content_type" in e and media_type(ctype) != media_type(e["content_type"]):
        problems.append(f"content type {ctype!r}, want {e['content_type']!r}")
    for name, value in (e.get("headers") or {}).items():
        got = r.headers.get(str(name).lower())
        if got != value:
            problems.append(f"header {name}: {got!r}, want {value!r}")
    if "body" in e and r.body != str(e["body"]).encode():
        problems.append(f"body {r.body[:200]!r}, want {e['body']!r}")
    if "records" in e or "record_count" in e:
        try:
            records = parse_records(r.body, ctype or str(e.get("content_type", "")))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            problems.append(f"records unreadable ({exc}): {r.body[:200]!r}")
        else:
            if "records" in e and not same_value(records, e["records"]):
                problems.append(f"records {records[:10]}, want {e['records'][:10]}")
            if "record_count" in e and len(records) != e["record_count"]:
                problems.append(f"{len(records)} records, want {e['record_count']}")
    if "json" in e or "json_keys" in e:
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            problems.append(f"body is not a JSON object: {text[:200]!r}")
        else:
            for key, value in (e.get("json") or {}).items():
                if key not in doc or not same_value(doc[key], value):
                    problems.append(f"JSON {key}: {doc.get(key)!r}, want {value!r}")
            if "json_keys" in e and sorted(doc) != sorted(e["json_keys"]):
                problems.append(f"JSON keys {sorted(doc)}, want {sorted(e['json_keys'])}")
    return problems


def normalized(r: Response) -> tuple[int, str, Any]:
    """What must agree between runtimes for one request: the status, and the body as parsed values
    (records, or a JSON document), its first line (messages), nothing (an empty body), or the raw bytes."""
    ctype = media_type(r.headers.get("content-type", ""))
    if not r.body:
        return r.status, "empty", b""
    if r.status >= 400 or ctype == "text/plain":
        return r.status, "message", r.body.decode("utf-8", errors="replace").split("\n", 1)[0]
    try:
        if ctype == "application/json":
            doc = json.loads(r.body)
            if isinstance(doc, dict) and "predictions" not in doc:
                return r.status, "json", doc
        if ctype in ("text/csv", "application/json", "application/jsonlines"):
            return r.status, "records", parse_records(r.body, ctype)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        pass
    return r.status, "body", r.body


def agree(a: tuple[int, str, Any], b: tuple[int, str, Any]) -> bool:
    return a[0] == b[0] and a[1] == b[1] and same_value(a[2], b[2])


def judge_training(e: dict[str, Any], exit_code: int | None, failure: str | None, seen: dict[str, Any] | None,
                   rosetta_json: dict[str, Any] | None, root: Path) -> list[str]:
    """Every way a training run differs from its expectation ``e`` (exit code, failure line, seen.json,
    rosetta.json, files under /opt/ml)."""
    problems: list[str] = []
    if "exit" in e and exit_code != e["exit"]:
        problems.append(f"exit {exit_code}, want {e['exit']}")
    first = (failure or "").strip().split("\n", 1)[0] if failure else None
    if "failure" in e and first != e["failure"]:
        problems.append(f"failure line {first!r}, want {e['failure']!r}")
    if "failure_pattern" in e and (first is None or not re.fullmatch(e["failure_pattern"], first)):
        problems.append(f"failure line {first!r} does not match {e['failure_pattern']!r}")
    for what, got, want in (("seen.json", seen, e.get("seen")), ("rosetta.json", rosetta_json, e.get("rosetta_json"))):
        if want is None:
            continue
        if got is None:
            problems.append(f"no {what}")
            continue
        for key, value in want.items():
            if key not in got or not same_value(got[key], value):
                problems.append(f"{what} {key}: {got.get(key)!r}, want {value!r}")
    for rel in e.get("files", []):
        if not (root / rel).exists():
            problems.append(f"/opt/ml/{rel} missing")
    return problems
