"""``rosetta endpoint up|invoke|logs|ls|down|url``: local SageMaker endpoints that boto3 can call.

``up`` starts the model's containers and a front serving SageMaker Runtime's API on 127.0.0.1
(one front per state folder); both outlive the command. ``invoke`` calls it as a client would;
``logs`` prints each container's lines prefixed with its hostname; ``ls`` lists the endpoints;
``down`` removes an endpoint's containers (and stops the front with the last endpoint).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sagemaker_rosetta.dockerapi import DockerError
from sagemaker_rosetta.endpoint import daemon, deploy, spec
from sagemaker_rosetta.endpoint.errors import EndpointError
from sagemaker_rosetta.endpoint.state import Endpoint, State

console = Console(stderr=True, highlight=False)


def _say(msg: str) -> None:
    console.print(f"[bold cyan]rosetta endpoint[/] {escape(msg)}", soft_wrap=True)


def _guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A user's mistake is one ``error:`` line (and the context after it), exit 2; no traceback."""
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (EndpointError, DockerError, ValueError) as exc:
            first, _, rest = str(exc).strip().partition("\n")
            console.print(f"[bold red]error:[/] {escape(first)}", soft_wrap=True)
            if rest.strip():
                console.print(rest, markup=False, soft_wrap=True)
            return 2
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]")
            return 130
    return run


def _state(args: argparse.Namespace) -> State:
    return State(args.state)


# -- up -------------------------------------------------------------------------------------------

def _spec(args: argparse.Namespace) -> spec.ModelSpec:
    kw = {"store": args.store, "s3_endpoint_url": args.s3_endpoint_url}
    sources = [bool(args.spec), bool(args.step), bool(args.package),
               bool(args.image or args.container or args.multi_model)]
    if sum(sources) > 1:
        raise EndpointError("give one source: IMAGE/--container, --spec, --step or --package")
    if args.spec:
        return spec.from_spec_file(Path(args.spec), **kw)
    if args.step:
        return spec.from_pipeline_step(args.step, workdir=Path(args.workdir), execution=args.execution, **kw)
    if args.package:
        return spec.from_package(args.package, **kw)
    if args.multi_model:
        if not args.image or args.container or args.model:
            raise EndpointError("--multi-model SOURCE takes one IMAGE (no --model, no --container)")
        source = args.multi_model
        if not source.startswith("s3://"):
            folder = Path(source).expanduser().resolve()
            if not folder.is_dir():
                raise EndpointError(f"--multi-model {source}: no such folder (give a folder or an s3:// prefix)")
            source = str(folder)
        multi = spec.from_create_model({"PrimaryContainer": {"Image": args.image, "Mode": "MultiModel",
                                                             "ModelDataUrl": source}},
                                       source=f"multi-model {source}", **kw)
        by_host = spec.parse_env(args.env, ["primary"])
        multi.containers[0].environment = {**by_host.get("", {}), **by_host.get("primary", {})}
        return multi
    model = args.model
    if model and not model.startswith("s3://"):
        model = str(Path(model).expanduser().resolve())
    containers = [c if "=" not in c or c.split("=", 1)[1].startswith("s3://")
                  else f"{c.split('=', 1)[0]}={Path(c.split('=', 1)[1]).expanduser().resolve()}"
                  for c in args.container]
    made = spec.from_command_line(image=args.image, model=model, containers=containers, hostnames=args.hostname,
                                  env=args.env, mode=args.mode or "serial")
    made.store, made.s3_endpoint_url = args.store, args.s3_endpoint_url
    return made


def cmd_up(args: argparse.Namespace) -> int:
    state = _state(args)
    if state.load(args.name) is not None:  # before reading any model: the cheapest mistake first
        raise EndpointError(f"endpoint {args.name} exists already: `rosetta endpoint down {args.name}` first, "
                            "or pick another name")
    model = _spec(args)
    if args.mode:
        model.mode = args.mode.capitalize()
    n = len(model.containers)
    kind = "multi-model" if model.multi_model else ("1 container" if n == 1 else f"{n} containers, {model.mode}")
    _say(f"{args.name}: {kind} from {model.source}")
    endpoint = deploy.up(state, args.name, model, say=_say, ready_timeout=args.ready_timeout)
    try:
        url = daemon.ensure_front(state, args.port)
    except BaseException:
        deploy.down(state, args.name)
        raise
    _say(f"{args.name} is InService at {url}/endpoints/{args.name}/invocations")
    hosts = ", ".join(m.hostname for m in endpoint.members)
    if endpoint.mode == "Direct":
        _say(f"Direct mode: name a container with TargetContainerHostname ({hosts})")
    console.print(f'boto3.client("sagemaker-runtime", endpoint_url="{url}").invoke_endpoint('
                  f'EndpointName="{args.name}", ContentType="text/csv", Body=b"...")', markup=False, soft_wrap=True)
    print(url)  # stdout: the URL alone, for scripts (URL=$(rosetta endpoint up …))
    return 0


# -- invoke ---------------------------------------------------------------------------------------

def cmd_invoke(args: argparse.Namespace) -> int:
    state = _state(args)
    info = daemon.running(state)
    if info is None:
        raise EndpointError(f"no endpoint front is running for {state.root} (`rosetta endpoint up` first)")
    if args.body in (None, "-"):
        body = sys.stdin.buffer.read()
    else:
        try:
            body = Path(args.body).read_bytes()
        except OSError as exc:
            raise EndpointError(f"cannot read --body {args.body}: {exc.strerror}") from None
    headers = {"Content-Type": args.content_type}
    for header, value in (("Accept", args.accept), ("X-Amzn-SageMaker-Custom-Attributes", args.custom_attributes),
                          ("X-Amzn-SageMaker-Target-Model", args.target_model),
                          ("X-Amzn-SageMaker-Target-Container-Hostname", args.target_container_hostname),
                          ("X-Amzn-SageMaker-Inference-Id", args.inference_id)):
        if value is not None:
            headers[header] = value
    conn = http.client.HTTPConnection("127.0.0.1", int(info["port"]), timeout=args.timeout)
    try:
        conn.request("POST", f"/endpoints/{args.name}/invocations", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        raise EndpointError(f"the endpoint front did not answer: {exc}") from None
    finally:
        conn.close()
    if resp.status != 200:
        try:
            doc = json.loads(data)
        except ValueError:
            doc = {"Message": data.decode(errors="replace")}
        code = (resp.getheader("x-amzn-ErrorType") or "Error").split(":", 1)[0]
        console.print(f"[bold red]error:[/] {code}: {escape(str(doc.get('Message', '')))}", soft_wrap=True)
        return 1
    if args.verbose:
        for name in ("Content-Type", "x-Amzn-Invoked-Production-Variant", "X-Amzn-SageMaker-Custom-Attributes"):
            if resp.getheader(name) is not None:
                console.print(f"{name}: {resp.getheader(name)}", markup=False)
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return 0


# -- logs, ls, down, url --------------------------------------------------------------------------

def _endpoint(state: State, name: str) -> Endpoint:
    found = state.load(name)
    if found is None:
        raise EndpointError(f"no endpoint {name} in {state.root} (endpoints: {', '.join(state.names()) or 'none'})")
    return found


def cmd_logs(args: argparse.Namespace) -> int:
    from sagemaker_rosetta.containers import Container

    endpoint = _endpoint(_state(args), args.name)
    lock = threading.Lock()

    def pump(hostname: str, container: str) -> None:
        lines = list(Container("", name=container).lines(follow=args.follow))
        if not args.follow and args.tail:
            lines = lines[-args.tail:]
        for line in lines:
            with lock:
                print(f"[{hostname}] {line}", flush=True)

    if not args.follow:
        for m in endpoint.members:
            pump(m.hostname, m.container)
        return 0
    threads = [threading.Thread(target=pump, args=(m.hostname, m.container), daemon=True) for m in endpoint.members]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 0


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    if sys.stdout.isatty():
        table = Table(title=title, title_justify="left")
        for c in columns:
            table.add_column(c, overflow="fold")
        for r in rows:
            table.add_row(*[escape(x) for x in r])
        Console().print(table)
        return
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    print(title)
    for cells in (columns, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())


def cmd_ls(args: argparse.Namespace) -> int:
    state = _state(args)
    info = daemon.running(state)
    rows = []
    for name in state.names():
        ep = state.load(name)
        if ep is None:
            continue
        containers = ", ".join(f"{m.hostname}={m.image}" for m in ep.members)
        if ep.multi_model:
            containers += f" (models: {ep.multi_model.get('source')})"
        rows.append((ep.name, deploy.status(ep), ep.mode, containers, ep.created))
    where = info["url"] if info else "front not running"
    _table(f"endpoints in {state.root} ({where})", ("name", "status", "mode", "containers", "created"), rows)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    state = _state(args)
    names = state.names() if args.all else args.names
    if not names:
        raise EndpointError("name the endpoints to remove, or give --all")
    for name in names:
        removed = deploy.down(state, name)
        _say(f"{name}: removed ({removed} container{'s' if removed != 1 else ''})")
    if not state.names() and daemon.stop_front(state):
        _say("no endpoint left: the front stopped")
    return 0


def cmd_url(args: argparse.Namespace) -> int:
    info = daemon.running(_state(args))
    if info is None:
        raise EndpointError("no endpoint front is running (`rosetta endpoint up` starts it)")
    print(info["url"])
    return 0


# -- parser ---------------------------------------------------------------------------------------

def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("endpoint", help="local SageMaker endpoints (boto3 invoke_endpoint), serial "
                                               "inference pipelines, multi-model endpoints",
                              description=__doc__)
    sub = p.add_subparsers(dest="endpoint_command", required=True, metavar="ACTION")

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--state", help="state folder (default: $ROSETTA_ENDPOINT_STATE or ~/.rosetta/endpoints)")

    q = sub.add_parser("up", help="start an endpoint (its containers and, once, the front)",
                       description="Serve a model: IMAGE --model PATH (what `rosetta train` prints), several "
                                   "--container IMAGE=MODEL (a serial inference pipeline), a CreateModel JSON "
                                   "(--spec), a local pipeline run's Model step (--step), a registered package "
                                   "(--package), or a multi-model prefix (--multi-model SOURCE IMAGE).")
    q.add_argument("name", help="EndpointName")
    q.add_argument("image_pos", nargs="?", metavar="IMAGE", help="the image (same as --image)")
    q.add_argument("--image", help="the serving image (on the local engine; never pulled)")
    q.add_argument("--model", help="model folder, model.tar.gz or s3:// URI in the store")
    q.add_argument("--container", action="append", default=[], metavar="IMAGE[=MODEL]",
                   help="a container of a multi-container model, in order (repeatable)")
    q.add_argument("--hostname", action="append", default=[], metavar="NAME",
                   help="ContainerHostname of each --container, by position (default container-1, …)")
    q.add_argument("--env", action="append", default=[], metavar="[HOSTNAME:]KEY=VALUE",
                   help="a container's Environment (every container's without HOSTNAME:)")
    q.add_argument("--mode", choices=("serial", "direct"),
                   help="InferenceExecutionConfig.Mode of a multi-container model (default: serial, or the spec's)")
    q.add_argument("--spec", metavar="FILE", help="a CreateModel request (JSON): PrimaryContainer or Containers, "
                                                  "InferenceExecutionConfig")
    q.add_argument("--step", help="a Model (or RegisterModel) step of a local pipeline run")
    q.add_argument("--execution", help="that run's execution id (default: the latest where the step succeeded)")
    q.add_argument("--workdir", default=".rosetta-run/runs", help="the runs' work folder (rosetta pipeline run)")
    q.add_argument("--package", metavar="GROUP/VERSION", help="a registered model package (ARN or GROUP/VERSION)")
    q.add_argument("--multi-model", metavar="FOLDER|S3PREFIX",
                   help="serve TargetModel=<key> archives from this folder or s3:// prefix (one IMAGE)")
    q.add_argument("--store", default=".rosetta-run/s3", help="folder standing in for S3 (s3://b/k → STORE/b/k)")
    q.add_argument("--s3-endpoint-url", help="read s3:// URIs from an S3-compatible endpoint instead of --store")
    q.add_argument("--port", type=int, help="the front's port when it starts (default $ROSETTA_ENDPOINT_PORT, "
                                            "else a free one)")
    q.add_argument("--ready-timeout", type=float, default=300, metavar="SECONDS",
                   help="how long each container may take to answer /ping (default 300)")
    common(q)
    q.set_defaults(func=_guard(_up_args))

    q = sub.add_parser("invoke", help="call an endpoint (body from --body FILE or stdin); the answer on stdout")
    q.add_argument("name")
    q.add_argument("--body", metavar="FILE", help="request body file ('-' or absent: stdin)")
    q.add_argument("--content-type", default="text/csv", help="Content-Type (default text/csv)")
    q.add_argument("--accept", help="Accept")
    q.add_argument("--custom-attributes", help="X-Amzn-SageMaker-Custom-Attributes")
    q.add_argument("--target-model", help="TargetModel (multi-model endpoints)")
    q.add_argument("--target-container-hostname", help="TargetContainerHostname (Direct mode)")
    q.add_argument("--inference-id", help="InferenceId")
    q.add_argument("--timeout", type=float, default=120, help="seconds to wait for the answer")
    q.add_argument("-v", "--verbose", action="store_true", help="print the response headers on stderr")
    common(q)
    q.set_defaults(func=_guard(cmd_invoke))

    q = sub.add_parser("logs", help="each container's output, prefixed [hostname]")
    q.add_argument("name")
    q.add_argument("-f", "--follow", action="store_true", help="keep printing new lines (Ctrl-C to stop)")
    q.add_argument("--tail", type=int, default=0, help="only the last N lines of each container")
    common(q)
    q.set_defaults(func=_guard(cmd_logs))

    q = sub.add_parser("ls", help="the endpoints, their status and containers")
    common(q)
    q.set_defaults(func=_guard(cmd_ls))

    q = sub.add_parser("down", help="remove endpoints (no container is left); the front stops with the last")
    q.add_argument("names", nargs="*", metavar="NAME")
    q.add_argument("--all", action="store_true", help="every endpoint of the state folder")
    common(q)
    q.set_defaults(func=_guard(cmd_down))

    q = sub.add_parser("url", help="the front's URL (boto3's endpoint_url)")
    common(q)
    q.set_defaults(func=_guard(cmd_url))


def _up_args(args: argparse.Namespace) -> int:
    if args.image_pos:
        if args.image and args.image != args.image_pos:
            raise EndpointError(f"two images: {args.image_pos} and --image {args.image}")
        args.image = args.image_pos
    return cmd_up(args)
