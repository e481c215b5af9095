"""Run the golden cases against a Rosetta runtime image over HTTP (``rosetta conform IMAGE --golden LANG``).

For each fixture program the cases use (``conformance/golden/models/<lang>/<program>/``) an image is
built ``FROM`` the runtime image with the program as ``/opt/program``. Each serving setup is trained
once with ``IMAGE train`` on a fake ``/opt/ml``; the cases are grouped by setup and serving
environment, so one container serves every case of a group. The cases of ``multimodel.json`` run
against a server in multi-model mode with the models folder of their setup mounted at
``/opt/ml/models`` (one server per setup and environment, emptied of models between cases, as the
golden README allows; a fresh one when that cleanup fails). Training cases each run ``IMAGE train``
and are judged by what is visible from outside: the exit code, the failure file, ``seen.json`` (the
model writes it to ``SM_OUTPUT_DATA_DIR``) and ``rosetta.json``. Results are the suite's own
:class:`~rosetta_conformance.outcome.Result` (one per case, ID = case id), so the same reports and
expected-failure rules apply: a case listed in ``expected-differences/<lang>.json`` reports XFAIL.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rosetta_conformance import golden, golden_cache
from rosetta_conformance.golden import Case, Golden, MultiCase, MultiSetup, Setup, TrainingCase
from rosetta_conformance.outcome import Result, Status
from rosetta_conformance.runner import Report
from sagemaker_rosetta import containers, images, local_images
from sagemaker_rosetta.containers import LABEL, RUN_ID, DockerError, Response, RunTimeout, Server, ml_root

#: the runtime images and the language of their programs
RUNTIME_IMAGES = {"rosetta/python:latest": "python", "rosetta/r:latest": "r", "rosetta/r:rpy2": "r",
                  "rosetta/julia:latest": "julia"}
PROGRAM_FILE = {"python": "model.py", "r": "model.R", "julia": "model.jl"}
Progress = Callable[[Result], None]


def program_tag(base: str, program: str) -> str:
    """``rosetta-conformance/golden-<base>:<program>``, e.g. ``golden-r-rpy2:hooks``."""
    slug = base.split("/")[-1].replace(":", "-").replace("_", "-")
    return f"rosetta-conformance/golden-{slug}:{program}"


def build_program_image(base: str, lang: str, program: str, root: Path | None = None) -> str:
    """``FROM base`` + ``models/<lang>/<program>/`` as ``/opt/program`` (a one-layer build)."""
    src = (root or golden.golden_dir()) / "models" / lang / program
    if not (src / PROGRAM_FILE[lang]).is_file():
        raise FileNotFoundError(f"no golden program {src / PROGRAM_FILE[lang]}")
    tag = program_tag(base, program)
    with tempfile.TemporaryDirectory(prefix="rosetta-golden-") as tmp:
        shutil.copytree(src, Path(tmp) / "program")
        (Path(tmp) / "Dockerfile").write_text(f"FROM {base}\nCOPY program/ /opt/program/\n")
        images.docker_build(tag, Path(tmp) / "Dockerfile", Path(tmp), say=lambda _: None, quiet=True)
    return tag


@dataclass
class Answer:
    """One case's request and what came back (``response`` None: no answer, see ``error``)."""

    case: Case
    response: Response | None
    error: str = ""


@dataclass
class GoldenRun:
    """The golden cases against one runtime image; :meth:`run` returns a report and keeps the answers."""

    base: str
    lang: str
    root: Path = field(default_factory=golden.golden_dir)
    jobs: int = 2
    ready_timeout: float = 180.0
    train_timeout: float = 300.0
    training: bool = True
    #: also the multi-model cases (multimodel.json)
    multimodel: bool = True
    #: keep trained setups between runs (:mod:`rosetta_conformance.golden_cache`, keyed by image ID)
    cache: bool = True
    answers: dict[str, Answer] = field(default_factory=dict)
    #: where the time went: seconds training / starting servers, counts (cached setups, servers)
    figures: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cases: Golden = golden.load(self.root)
        self.expected = golden.expected_differences(self.lang, self.root)
        self.labels = {LABEL: RUN_ID, "io.rosetta.conformance": f"golden-{uuid.uuid4().hex[:10]}"}
        self.workdir = Path(tempfile.mkdtemp(prefix="rosetta-golden-"))
        self._tags: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- images and models ------------------------------------------------------------------------
    def image(self, program: str) -> str:
        with self._lock:
            if program not in self._tags:
                self._tags[program] = build_program_image(self.base, self.lang, program, self.root)
            return self._tags[program]

    def _layout(self, name: str, hyperparameters: dict[str, str], channels: dict[str, dict[str, str]],
                inputdataconfig: dict[str, Any] | None,
                resourceconfig: dict[str, Any] | None = golden.DEFAULT_RESOURCECONFIG,
                checkpointconfig: dict[str, Any] | None = None) -> Path:
        root = ml_root(self.workdir / name, hyperparameters=hyperparameters, channels={ch: {} for ch in channels})
        shutil.rmtree(root / "checkpoints")  # the runtime creates the checkpoint folder, not the platform
        config = root / "input" / "config"
        if resourceconfig is None:
            (config / "resourceconfig.json").unlink()
        elif resourceconfig != golden.DEFAULT_RESOURCECONFIG:
            (config / "resourceconfig.json").write_text(json.dumps(resourceconfig))
        if checkpointconfig is not None:  # {ml}: the /opt/ml root as the container sees it
            text = json.dumps(checkpointconfig).replace("{ml}", "/opt/ml")
            (config / "checkpointconfig.json").write_text(text)
        for ch, files in channels.items():
            for rel, text in files.items():
                path = root / "input" / "data" / ch / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        if inputdataconfig is not None:
            (root / "input" / "config" / "inputdataconfig.json").write_text(json.dumps(inputdataconfig))
        for p in [root, *root.rglob("*")]:  # any container user may write outputs
            p.chmod(0o777 if p.is_dir() else 0o666)
        return root

    def _train(self, name: str, program: str, hyperparameters: dict[str, str], channels: dict[str, dict[str, str]],
               inputdataconfig: dict[str, Any] | None, root: Path | None = None,
               **config: dict[str, Any] | None) -> tuple[Path, int | None, str]:
        """``IMAGE train`` on a new /opt/ml, or again on ``root`` (a restarted job)."""
        root = root or self._layout(name, hyperparameters, channels, inputdataconfig, **config)
        try:
            done = containers.run(self.image(program), ["train"], volumes={root: "/opt/ml"}, labels=self.labels,
                                  timeout=self.train_timeout)
            return root, done.returncode, (done.stdout + done.stderr)[-1500:]
        except RunTimeout:
            return root, None, f"training timed out after {self.train_timeout:.0f} s"

    def trained(self, setup: Setup) -> Path:
        """The model directory of ``setup`` (from the cache when this image trained it before); raises with
        the log when training fails."""
        def train() -> Path:
            t0 = time.monotonic()
            root, code, log = self._train(f"setup-{setup.name}", setup.program, setup.hyperparameters,
                                          setup.channels, setup.inputdataconfig)
            self._count("train_s", time.monotonic() - t0)
            self._count("trained", 1)
            if code != 0:
                raise RuntimeError(f"training setup {setup.name!r} exited {code}: {log}")
            return root / "model"

        if not self.cache:
            return train()
        inputs = {"program": setup.program, "hyperparameters": setup.hyperparameters, "channels": setup.channels,
                  "inputdataconfig": setup.inputdataconfig}
        model, hit = golden_cache.cached_model(
            golden_cache.key(local_images.image_id(self.image(setup.program)), inputs), train)
        self._count("cached", int(hit))
        return model

    def _count(self, figure: str, amount: float) -> None:
        with self._lock:
            self.figures[figure] = self.figures.get(figure, 0.0) + amount

    def _started(self, server: Server) -> None:
        """Start ``server`` and wait for /ping 200, counting the time (the cost of a serving group)."""
        t0 = time.monotonic()
        try:
            server.start()
            server.wait_ready(self.ready_timeout)
        finally:
            self._count("server_start_s", time.monotonic() - t0)
            self._count("servers", 1)

    # -- serving ------------------------------------------------------------------------------------
    def _serve_group(self, setup: Setup, env: dict[str, str], cases: list[Case], models: dict[str, Path | str],
                     done: Callable[[Answer], None]) -> None:
        model = models[setup.name]
        if isinstance(model, str):
            for c in cases:
                done(Answer(c, None, model))
            return
        server = Server(self.image(setup.program), env=env, volumes={model: "/opt/ml/model:ro"}, labels=self.labels,
                        name=containers.container_name(f"golden-{setup.name}"))
        try:
            self._started(server)
        except (DockerError, RuntimeError, TimeoutError) as exc:
            server.remove()
            for c in cases:
                done(Answer(c, None, f"server for setup {setup.name!r} with env {env} did not start: {exc}"))
            return
        try:
            for c in cases:
                try:
                    method = str(c.request.get("method", "POST")).upper()
                    body = c.body if c.body or method == "POST" else None
                    r = server.request(method, str(c.request.get("path", "/invocations")), body, c.headers,
                                       timeout=60)
                    done(Answer(c, r))
                except OSError as exc:
                    done(Answer(c, None, f"no answer: {exc}"))
        finally:
            server.remove()

    # -- multi-model mode -----------------------------------------------------------------------------
    def models_root(self, ms: MultiSetup, models: dict[str, Path | str]) -> Path:
        """``<root>/<name>/model`` for every model of ``ms``, as the golden README says (copies of trained
        setups, corrupt, padded with a sparse file, or empty)."""
        root = self.workdir / f"mme-{ms.name}"
        for spec in ms.models.values():
            folder = root / spec.name / "model"
            if spec.setup is None:
                folder.mkdir(parents=True, exist_ok=True)
                continue
            source = models.get(spec.setup)
            if not isinstance(source, Path):
                raise RuntimeError(f"model {spec.name!r}: setup {spec.setup!r} not trained: {source}")
            shutil.copytree(source, folder)
            if spec.corrupt:
                for f in folder.rglob("*"):
                    if f.is_file() and f.name != "rosetta.json":
                        f.write_bytes(b"not a model\n")
            if spec.pad_mb:
                with open(folder / "padding.bin", "wb") as fh:
                    fh.truncate(spec.pad_mb << 20)
        for q in [root, *root.rglob("*")]:
            q.chmod(0o755 if q.is_dir() else 0o644)
        return root

    def _start_multi(self, ms: MultiSetup, env: dict[str, str], root: Path) -> Server:
        server = Server(self.image(ms.program), env=env, volumes={root: "/opt/ml/models:ro"}, labels=self.labels,
                        name=containers.container_name(f"golden-{ms.name}"))
        try:
            self._started(server)
        except (DockerError, RuntimeError, TimeoutError):
            server.remove()
            raise
        return server

    @staticmethod
    def _emptied(server: Server) -> bool:
        """Unload every model ``GET /models`` lists (all pages); True when the listing is then empty."""
        try:
            names: list[str] = []
            token = ""
            for _ in range(100):
                r = server.request("GET", "/models" + (f"?next_page_token={token}" if token else ""), timeout=30)
                doc = json.loads(r.body) if r.status == 200 else None
                if not isinstance(doc, dict) or not isinstance(doc.get("models"), list):
                    return False
                names += [str(m.get("modelName")) for m in doc["models"] if isinstance(m, dict)]
                token = str(doc.get("nextPageToken") or "")
                if not token:
                    break
            for name in names:
                server.request("DELETE", f"/models/{urllib.parse.quote(name, safe='')}", timeout=60)
            after = server.request("GET", "/models", timeout=30)
            return after.status == 200 and json.loads(after.body) == {"models": []}
        except (OSError, ValueError):
            return False

    def _serve_multi(self, ms: MultiSetup, env: dict[str, str], cases: list[MultiCase], root: Path | str,
                     record: Callable[[Result], None]) -> None:
        server: Server | None = None
        #: a model may be loaded: a step's POST /models answered 2xx since the server was last emptied
        loaded = False
        try:
            for i, case in enumerate(cases):
                t0 = time.monotonic()
                sent = f"{len(case.steps)} steps, env {case.env}"
                if isinstance(root, str):
                    record(self._result(case.id, case.clause, f"multi-model: {ms.name}", [root], sent, "", 0.0))
                    continue
                # a server that cannot list its models (a runtime without multi-model mode) is kept while
                # no load has succeeded on it: nothing can carry over to the next case
                if server is not None and (not server.running() or (not self._emptied(server) and loaded)):
                    server.remove()
                    server = None
                loaded = False
                if server is None:
                    try:
                        server = self._start_multi(ms, env, root)
                    except (DockerError, RuntimeError, TimeoutError) as exc:
                        for rest in cases[i:]:
                            record(self._result(rest.id, rest.clause, f"multi-model: {ms.name}",
                                                [f"server for {ms.name!r} with env {env} did not start: {exc}"],
                                                sent, "", 0.0))
                        return
                problems: list[str] = []
                got: list[str] = []
                for k in range(len(case.steps)):
                    step = case.step(k, "/opt/ml/models")
                    method = str(step.request.get("method", "POST")).upper()
                    body = step.body if step.body or method == "POST" else None
                    try:
                        r = server.request(method, str(step.request.get("path", "/")), body, step.headers, timeout=120)
                    except OSError as exc:
                        problems.append(f"step {k + 1} ({method} {step.request.get('path')}): no answer: {exc}")
                        break
                    got.append(f"{k + 1}: {r.status} {r.body[:80]!r}")
                    loaded |= method == "POST" and str(step.request.get("path")) == "/models" and r.status < 300
                    found = golden.judge(step, r)
                    if found:
                        problems += [f"step {k + 1} ({method} {step.request.get('path')}): {p}" for p in found]
                        break
                record(self._result(case.id, case.clause, f"multi-model: {ms.name}", problems, sent,
                                    "; ".join(got)[-600:], time.monotonic() - t0))
        finally:
            if server is not None:
                server.remove()

    # -- the run ------------------------------------------------------------------------------------
    def _result(self, cid: str, clause: str, what: str, problems: list[str], sent: str, received: str,
                seconds: float) -> Result:
        status = Status.FAIL if problems else Status.PASS
        res = Result(cid, what, clause, "golden", status, "; ".join(problems), sent, received, seconds)
        if cid in self.expected:
            res.reason = self.expected[cid]
            res.status = Status.XFAIL if problems else Status.XPASS
        return res

    def run(self, progress: Progress | None = None) -> Report:
        t0 = time.monotonic()
        results: dict[str, Result] = {}
        lock = threading.Lock()

        def record(res: Result) -> None:
            with lock:
                results[res.clause] = res
            if progress:
                progress(res)

        def answered(a: Answer) -> None:
            self.answers[a.case.id] = a
            c = a.case
            size = f" ({len(c.body):,} bytes)" if len(c.body) > 120 else ""
            sent = f"{c.request.get('method', 'POST')} {c.request.get('path', '/invocations')} {c.headers} " \
                   f"{c.body[:120]!r}{size}" + (f" env {c.env}" if c.env else "")
            if a.response is None:
                record(self._result(c.id, c.clause, f"serving: {c.setup}", [a.error], sent, "", 0.0))
                return
            r = a.response
            got = f"{r.status} {r.headers.get('content-type', '')} {r.body[:200]!r}"
            record(self._result(c.id, c.clause, f"serving: {c.setup}", golden.judge(c, r), sent, got, r.seconds))

        used = {self.cases.setups[c.setup].name for c in self.cases.cases}
        multi = self.cases.multimodel if self.multimodel else []
        for ms in {self.cases.multi_setups[c.setup].name: self.cases.multi_setups[c.setup] for c in multi}.values():
            used |= {spec.setup for spec in ms.models.values() if spec.setup}
        models: dict[str, Path | str] = {}
        try:
            with ThreadPoolExecutor(max(1, self.jobs), thread_name_prefix="golden") as pool:
                def train_setup(name: str) -> None:
                    try:
                        models[name] = self.trained(self.cases.setups[name])
                    except (RuntimeError, DockerError, FileNotFoundError) as exc:
                        models[name] = str(exc)
                list(pool.map(train_setup, sorted(used)))
                groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[Case]] = {}
                for c in self.cases.cases:
                    groups.setdefault(c.group, []).append(c)
                futures = [pool.submit(self._serve_group, self.cases.setups[setup], dict(env), cases, models, answered)
                           for (setup, env), cases in groups.items()]
                multi_groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[MultiCase]] = {}
                for mc in multi:
                    multi_groups.setdefault(mc.group, []).append(mc)
                roots: dict[str, Path | str] = {}
                for setup_name in {setup for setup, _ in multi_groups}:
                    try:
                        roots[setup_name] = self.models_root(self.cases.multi_setups[setup_name], models)
                    except (RuntimeError, OSError) as exc:
                        roots[setup_name] = str(exc)
                futures += [pool.submit(self._serve_multi, self.cases.multi_setups[setup], dict(env), mcs,
                                        roots[setup], record) for (setup, env), mcs in multi_groups.items()]
                if self.training:
                    futures += [pool.submit(self._training_case, tc, record) for tc in self.cases.training]
                for f in futures:
                    f.result()
        finally:
            self.cleanup()
        order = [c.id for c in self.cases.cases] + [c.id for c in multi] + \
            ([t.id for t in self.cases.training] if self.training else [])
        return Report(f"{self.base} (golden, {self.lang})", ["golden"], [results[i] for i in order if i in results],
                      time.monotonic() - t0)

    def _training_case(self, tc: TrainingCase, record: Callable[[Result], None]) -> None:
        """One ``IMAGE train`` per run of the case on the same /opt/ml (a job restarted with its checkpoints:
        ``model`` and ``output`` are emptied between runs), each judged by its own expectation."""
        t0 = time.monotonic()
        sent = f"train {tc.program}: hyperparameters.json {tc.hyperparameters}; channels " \
               f"{ {ch: sorted(files) for ch, files in tc.channels.items()} }" + \
               (f"; {len(tc.runs)} runs on the same /opt/ml" if len(tc.runs) > 1 else "")
        problems: list[str] = []
        got: list[str] = []
        root: Path | None = None
        for i, expect in enumerate(tc.runs, 1):
            if root is not None:
                for sub in ("model", "output"):
                    shutil.rmtree(root / sub, ignore_errors=True)
                for sub in ("model", "output", "output/data"):  # as the first run had them
                    (root / sub).mkdir()
                    (root / sub).chmod(0o777)
            try:
                root, code, log = self._train(f"training-{tc.id}", tc.program, tc.hyperparameters, tc.channels,
                                              tc.inputdataconfig, root, resourceconfig=tc.resourceconfig,
                                              checkpointconfig=tc.checkpointconfig)
            except (DockerError, FileNotFoundError) as exc:
                record(self._result(tc.id, tc.clause, "training", [str(exc)], sent, "", time.monotonic() - t0))
                return
            failure_path = root / "output" / "failure"
            failure = failure_path.read_text(errors="replace") if failure_path.is_file() else None
            found = golden.judge_training(expect, code, failure, _read_json(root / "output" / "data" / "seen.json"),
                                          _read_json(root / "model" / "rosetta.json"), root)
            run = f"run {i}: " if len(tc.runs) > 1 else ""
            problems += [run + p for p in found]
            first = (failure or "").strip().split("\n", 1)[0]
            got.append(run + f"exit {code}" + (f"; failure: {first[:200]}" if first else "")
                       + (f"; log: {log[-300:]}" if found else ""))
        record(self._result(tc.id, tc.clause, "training", problems, sent, " | ".join(got), time.monotonic() - t0))

    def cleanup(self) -> None:
        try:
            containers.remove_labelled(f"io.rosetta.conformance={self.labels['io.rosetta.conformance']}")
        except DockerError:
            pass  # on the way out; the run label still finds them
        shutil.rmtree(self.workdir, ignore_errors=True)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def run_golden(base: str, lang: str | None = None, **kw: Any) -> tuple[Report, GoldenRun]:
    """The golden cases against ``base`` (a Rosetta runtime image); ``lang`` defaults from the image name."""
    lang = lang or RUNTIME_IMAGES.get(base)
    if lang not in golden.LANGUAGES:
        raise ValueError(f"which language's golden programs? pass one of {', '.join(golden.LANGUAGES)} for {base}")
    runner = GoldenRun(base, lang, **kw)
    return runner.run(), runner
