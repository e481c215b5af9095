"""A Transform step: serve the model (one container per instance), send every input file's records,
write ``<file>.out``."""

from __future__ import annotations

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosetta_orchestrator.local import batching, hosts, records
from rosetta_orchestrator.local.container import LogFn, follow_logs, remove_later, track
from rosetta_orchestrator.local.context import JobContext, StepFailed
from sagemaker_rosetta.containers import Server, container_name, unpack_model
from sagemaker_rosetta.networks import Pod

#: SageMaker's defaults when neither the job nor the container says otherwise (B-04)
DEFAULTS = {"BatchStrategy": "MultiRecord", "MaxPayloadInMB": 6, "MaxConcurrentTransforms": 1}


def run_transform(ctx: JobContext, args: dict[str, Any], *, ready_timeout: float = 180) -> dict[str, Any]:
    model_name = args["ModelName"]
    try:
        container = ctx.models.get(model_name)
    except KeyError:
        raise StepFailed(ctx.step, f"model {model_name!r} was not created in this run") from None
    members = _members(container)
    if container.get("Mode") == "Direct":
        raise StepFailed(ctx.step, f"model {model_name!r} runs its containers in Direct mode: batch transform "
                                   "sends every record through the containers in order (InferenceExecutionConfig "
                                   "Mode Serial)")
    dirs = {m.host: ctx.workdir / "model" / m.host if len(members) > 1 else ctx.workdir / "model" for m in members}
    for m in members:
        _unpack_model(ctx, m.container.get("ModelDataUrl"), dirs[m.host])
    model_dir = dirs[members[0].host]

    keys = ("BatchStrategy", "MaxPayloadInMB", "MaxConcurrentTransforms")
    settings: dict[str, Any] = {k: args[k] for k in keys if k in args}
    env: dict[str, str] = {}
    env["SAGEMAKER_BATCH"] = "true"  # B-02: always; the others only when the job sets them
    if "MaxPayloadInMB" in settings:
        env["SAGEMAKER_MAX_PAYLOAD_IN_MB"] = str(settings["MaxPayloadInMB"])
    if "BatchStrategy" in settings:
        strategy = batching.normalize_strategy(settings["BatchStrategy"])
        env["SAGEMAKER_BATCH_STRATEGY"] = "MULTI_RECORD" if strategy == "MultiRecord" else "SINGLE_RECORD"
    if "MaxConcurrentTransforms" in settings:
        env["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] = str(settings["MaxConcurrentTransforms"])
    env.update({str(k): str(v) for k, v in (args.get("Environment") or {}).items()})

    t_in = args["TransformInput"]
    t_out = args["TransformOutput"]
    input_dir = ctx.workdir / "input"
    files = ctx.store.fetch(t_in["DataSource"]["S3DataSource"]["S3Uri"], input_dir)
    out_dir = ctx.workdir / "output"
    out_dir.mkdir(parents=True, exist_ok=True)

    count = int((args.get("TransformResources") or {}).get("InstanceCount") or 1)
    names = hosts.names(count)
    multi = count > 1
    # the model's environment, then the job's batch settings and Environment (as SageMaker merges them)
    chains = {h: _Chain(ctx, members, dirs, env, args.get("Environment") or {},
                        f"{ctx.step}-{h}" if multi else ctx.step, h if multi else "") for h in names}
    counts = {"records": 0, "requests": 0}
    try:
        for chain in chains.values():
            chain.start()
        for h, chain in chains.items():
            for server, where in chain.each():
                try:
                    _wait_ready(server, ready_timeout)
                except (RuntimeError, TimeoutError) as exc:
                    where = ": ".join(w for w in (h if multi else "", where) if w)
                    where = f"{where}: " if where else ""
                    raise StepFailed(ctx.step, f"{where}serving container not ready: {str(exc).splitlines()[0]}",
                                     exit_code=server.exit_code(), details=str(exc)) from None
        # an inference pipeline's batch settings come from its first container (the one that gets the records)
        _apply_execution_parameters(ctx, chains[names[0]].servers[0], settings)
        strategy = batching.normalize_strategy(settings["BatchStrategy"]) or "MultiRecord"
        payload = int(settings["MaxPayloadInMB"])
        workers = max(1, int(settings["MaxConcurrentTransforms"]))
        ctx.log(f"[rosetta] BatchStrategy={strategy} MaxPayloadInMB={payload} MaxConcurrentTransforms={workers}"
                + (f" per instance, {count} instances" if multi else ""))
        # "Batch Transform partitions the Amazon S3 objects in the input by key and maps Amazon S3
        # objects to instances": files round-robin by key (see hosts.shard), one file on one instance
        parts = hosts.shard([f.relative_to(input_dir).as_posix() for f in files], count)
        if multi:
            ctx.log("[rosetta] input files per instance: " + ", ".join(f"{h}: {len(p)}" for h, p in
                                                                      zip(names, parts, strict=True)))
        failures: list[str] = []
        lock = threading.Lock()

        def instance(host: str, rels: list[str]) -> None:
            chain = chains[host]
            check = _RecordCheck(ctx, t_in, t_out, strategy, chain.env, _features(model_dir))
            with ThreadPoolExecutor(workers) as pool:
                for rel in rels:
                    f = input_dir / rel
                    try:
                        data = f.read_bytes()
                        recs = batching.split_records(data, t_in.get("SplitType"))
                        requests = batching.plan(recs, strategy, payload * batching.MIB if payload else None,
                                                 limit_name=f"MaxPayloadInMB={payload}")
                        responses = list(pool.map(lambda r: chain.invoke(r.body, t_in, t_out), requests))
                        check.file(recs, requests, responses)
                    except (batching.BatchError, _InvokeError, RecordCountError) as exc:
                        with lock:
                            failures.append(f"{rel}: {exc}")  # B-11: the file fails, the others go on
                        continue
                    dest = out_dir / f"{rel}.out"
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(batching.assemble([body for body, _ in responses], t_out.get("AssembleWith")))
                    with lock:
                        counts["records"] += len(recs) - check.header_lines
                        counts["requests"] += len(requests)

        if multi:
            with ThreadPoolExecutor(count) as instances:
                list(instances.map(instance, names, parts))
        else:
            instance(names[0], parts[0])
        failures.sort()
        ctx.log(f"[rosetta] {counts['records']} records in {counts['requests']} requests, "
                f"{len(files) - len(failures)}/{len(files)} files")
        ctx.store.put_dir(out_dir, t_out["S3OutputPath"])
        if failures:
            raise StepFailed(ctx.step, f"{len(failures)} input file(s) failed: {failures[0]}",
                             details="\n".join(failures))
    finally:
        for chain in chains.values():
            for server in reversed(chain.servers):  # the namespace's owner last
                remove_later(server.name)
    return {
        "TransformJobName": ctx.job_name,
        "TransformJobStatus": "Completed",
        "ModelName": model_name,
        "TransformInput": t_in,
        "TransformOutput": t_out,
        "BatchStrategy": batching.normalize_strategy(settings["BatchStrategy"]),
        "MaxPayloadInMB": settings["MaxPayloadInMB"],
        "MaxConcurrentTransforms": settings["MaxConcurrentTransforms"],
        "Records": counts["records"],
        "Requests": counts["requests"],
    }


def _prefixed(ctx: JobContext, host: str) -> LogFn:
    return lambda line: ctx.log(f"[{host}] {line}")


def _wait_ready(server: Server, timeout: float) -> None:
    """Poll ``/ping`` every 20 ms; ask the engine whether the container died only every second
    (a ``docker inspect`` per poll costs more than the poll itself)."""
    t0 = time.monotonic()
    next_check = t0
    while time.monotonic() - t0 < timeout:
        try:
            if server.request("GET", "/ping", timeout=2).status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        if time.monotonic() >= next_check:
            if not server.running():
                raise RuntimeError(f"container exited ({server.exit_code()}):\n{server.logs()[-3000:]}")
            next_check = time.monotonic() + 1
        time.sleep(0.02)
    raise TimeoutError(f"not ready after {timeout:.0f} s:\n{server.logs()[-3000:]}")


class _InvokeError(RuntimeError):
    pass


@dataclass
class _Member:
    host: str
    container: dict[str, Any]


def _members(model: dict[str, Any]) -> list[_Member]:
    """The model's containers in order: one (``PrimaryContainer``) or an inference pipeline's."""
    many = model.get("Containers") or [model]
    return [_Member(str(c.get("ContainerHostname") or (f"container-{k}" if len(many) > 1 else "primary")), dict(c))
            for k, c in enumerate(many, start=1)]


class _Chain:
    """One instance's serving containers: one Server, or an inference pipeline's containers in one
    network namespace (a Pod), container k on port ``9100 + 100 (k - 1)`` (SAGEMAKER_BIND_TO_PORT)
    with the 99 ports above as its SAGEMAKER_SAFE_PORT_RANGE, as the endpoint does it."""

    def __init__(self, ctx: JobContext, members: list[_Member], dirs: dict[str, Path], batch_env: dict[str, str],
                 job_env: dict[str, Any], name: str, instance: str) -> None:
        self.ctx, self.members, self.instance = ctx, members, instance
        n = len(members)
        self.ports = [8080] if n == 1 else [9100 + 100 * k for k in range(n)]
        self.pod = Pod(self.ports) if n > 1 else None
        self.servers: list[Server] = []
        self._kw: list[dict[str, Any]] = []
        for m, port in zip(members, self.ports, strict=True):
            env = {str(k): str(v) for k, v in (m.container.get("Environment") or {}).items()}
            env.update(batch_env)
            if n > 1:
                env["SAGEMAKER_BIND_TO_PORT"] = str(port)
                env["SAGEMAKER_SAFE_PORT_RANGE"] = f"{port + 1}-{port + 99}"
            env.update({str(k): str(v) for k, v in job_env.items()})
            self._kw.append({"env": env, "volumes": {dirs[m.host]: "/opt/ml/model:ro"}, "port": port,
                             "name": container_name(f"{name}-{m.host}" if n > 1 else name)})
        if n == 1:
            self.servers.append(Server(str(members[0].container["Image"]), **self._kw[0]))

    @property
    def env(self) -> dict[str, str]:
        """The first container's environment (the one that reads the records: header rule D1)."""
        return dict(self._kw[0]["env"])

    def _log(self, host: str) -> LogFn:
        prefix = "/".join(p for p in (self.instance, host if len(self.members) > 1 else "") if p)
        return _prefixed(self.ctx, prefix) if prefix else self.ctx.log

    def start(self) -> None:
        if self.pod is None:
            server = self.servers[0]
            track(server.name)
            server.start()
            follow_logs(server.name, self._log(self.members[0].host))
            return
        for m, kw in zip(self.members, self._kw, strict=True):
            track(kw["name"])
            self.servers.append(self.pod.server(str(m.container["Image"]), **kw))
            follow_logs(kw["name"], self._log(m.host))

    def each(self) -> list[tuple[Server, str]]:
        """Each server with how errors name it (nothing for a single container)."""
        return [(s, self.where(k) if len(self.servers) > 1 else "") for k, s in enumerate(self.servers, start=1)]

    def where(self, k: int) -> str:
        """``container-2`` or ``container-2 (model)``, as SageMaker names a pipeline's container."""
        host = self.members[k - 1].host
        return f"container-{k}" if host == f"container-{k}" else f"container-{k} ({host})"

    def invoke(self, body: bytes, t_in: dict[str, Any], t_out: dict[str, Any]) -> tuple[bytes, str]:
        """Through every container in order: container k+1 gets container k's body and Content-Type;
        only the last gets the job's Accept (the rule of docs/endpoints.md)."""
        ctype: str | None = t_in.get("ContentType")
        last = len(self.servers)
        for k, server in enumerate(self.servers, start=1):
            accept = t_out.get("Accept") if k == last else None
            resp = server.invoke(body, content_type=ctype, accept=accept, timeout=600)
            if resp.status != 200:
                where = f"{self.where(k)}: " if last > 1 else ""
                raise _InvokeError(f"{where}HTTP {resp.status}: {resp.text.strip()[:300]}")
            body, ctype = resp.body, resp.headers.get("content-type")
        return body, str(ctype or "")


class RecordCountError(RuntimeError):
    """A response does not hold one output record per input record of its request."""


class _RecordCheck:
    """For MultiRecord + SplitType Line + AssembleWith Line: every request's output records must
    equal the records it sent, or its file fails (issue 13: a header dropped from every payload
    shifted every later prediction and still Succeeded)."""

    def __init__(self, ctx: JobContext, t_in: dict[str, Any], t_out: dict[str, Any], strategy: str,
                 env: dict[str, str], features: list[str] | None) -> None:
        self.ctx = ctx
        self.active = (strategy == "MultiRecord" and t_in.get("SplitType") == "Line"
                       and t_out.get("AssembleWith") == "Line")
        # a header is a line of its own only when files are split into lines
        self.headered = t_in.get("SplitType") == "Line" and records.header_expected(t_in.get("ContentType"), env)
        self.features = features
        self.header_lines = 0
        self._unchecked: set[str] = set()

    def file(self, recs: list[bytes], requests: list[batching.Request],
             responses: list[tuple[bytes, str]]) -> None:
        first = next((r for r in recs if r.strip()), b"")
        self.header_lines = 1 if self.headered and records.is_header(first, self.features) else 0
        if not self.active:
            return
        for req, (body, ctype) in zip(requests, responses, strict=True):
            sent = records.nonblank_lines(req.body) - (self.header_lines if req.index == 0 else 0)
            got = records.output_records(body, ctype)
            if got is None:
                kind = records.media_type(ctype) or "no Content-Type"
                if kind not in self._unchecked:
                    self._unchecked.add(kind)
                    self.ctx.log(f"[rosetta] responses of type {kind} are not counted: one output per "
                                 "input record is not checked for them")
                continue
            if got != sent:
                raise RecordCountError(
                    f"request {req.index + 1}/{len(requests)} (bytes {req.start}-{req.end - 1}) sent {sent} "
                    f"record(s) and got {got} back ({records.media_type(ctype)}); every record needs exactly "
                    "one output, in order (a data row taken for a header, or rows dropped?)")


def _features(model_dir: Path) -> list[str] | None:
    """The model's feature names from the runtime's ``rosetta.json`` (decisions D2), if any."""
    try:
        doc = json.loads((model_dir / "rosetta.json").read_text())
    except (OSError, ValueError):
        return None
    features = doc.get("features") if isinstance(doc, dict) else None
    return [str(f) for f in features] if isinstance(features, list) else None


def _apply_execution_parameters(ctx: JobContext, server: Server, settings: dict[str, Any]) -> None:
    """Job values > the container's ``/execution-parameters`` (if 200) > defaults (B-03, B-04)."""
    try:
        resp = server.request("GET", "/execution-parameters", timeout=10)
        offered = json.loads(resp.body) if resp.status == 200 else {}
    except (OSError, ValueError):
        offered = {}
    for key, default in DEFAULTS.items():
        if key not in settings:
            settings[key] = offered.get(key, default) if isinstance(offered, dict) else default
    settings["BatchStrategy"] = batching.normalize_strategy(settings["BatchStrategy"])


def _unpack_model(ctx: JobContext, model_data: str | None, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    if model_data:
        fetched = ctx.store.fetch(str(model_data), ctx.workdir / "model-download")
        for tar_path in fetched:
            if tar_path.name.endswith(".tar.gz"):
                unpack_model(tar_path, dest)
            else:
                tar_path.replace(dest / tar_path.name)
    for p in [dest, *dest.rglob("*")]:  # files moved in as they are need the same access
        p.chmod(0o755 if p.is_dir() else 0o644)
