"""Bringing an endpoint's containers up and down (the one Docker layer: a :class:`Pod`).

Every container of a model shares one network namespace (:class:`~sagemaker_rosetta.networks.Pod`),
as the containers of a multi-container model share an instance on SageMaker: container k listens
on its own ``SAGEMAKER_BIND_TO_PORT`` with its own ``SAGEMAKER_SAFE_PORT_RANGE`` for any other port
it opens (M-02, M-03), so two copies of one image can sit side by side. A single container listens
on 8080 as SageMaker runs it. Every port is published on 127.0.0.1 only.

Containers are labelled with the endpoint (``io.rosetta.endpoint=<id>``), not with the command's
run, so they outlive ``rosetta endpoint up``; ``down`` removes them by that label.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable

from sagemaker_rosetta import local_images
from sagemaker_rosetta.containers import LABEL, Server, container_name, remove_labelled
from sagemaker_rosetta.dockerapi import DockerError
from sagemaker_rosetta.endpoint.errors import EndpointError
from sagemaker_rosetta.endpoint.multimodel import MODELS_ROOT, extracted_root
from sagemaker_rosetta.endpoint.spec import ModelSpec, materialize
from sagemaker_rosetta.endpoint.state import Endpoint, Member, State, check_name
from sagemaker_rosetta.networks import Pod

Say = Callable[[str], None]

ENDPOINT_LABEL = "io.rosetta.endpoint"
NAME_LABEL = "io.rosetta.endpoint.name"
STATE_LABEL = "io.rosetta.endpoint.state"
#: AWS refuses a multi-container model whose images lack this label (M-02), and a multi-model one
#: without the second
BIND_LABEL = "com.amazonaws.sagemaker.capabilities.accept-bind-to-port"
MULTI_LABEL = "com.amazonaws.sagemaker.capabilities.multi-models"
#: container k of a multi-container model listens on FIRST_PORT + STEP * (k - 1), and may open
#: ports in the STEP - 1 ports above it (its SAGEMAKER_SAFE_PORT_RANGE); none is 8080
FIRST_PORT, STEP = 9100, 100


def ports(n: int) -> list[int]:
    return [8080] if n == 1 else [FIRST_PORT + STEP * k for k in range(n)]


def _check_images(spec: ModelSpec) -> None:
    for k, c in enumerate(spec.containers, start=1):
        try:
            labels = local_images.labels(c.image)
        except DockerError:
            raise EndpointError(f"image {c.image} is not on the local engine (build it, or `docker pull` it "
                                "first: endpoints never pull)") from None
        if len(spec.containers) > 1 and str(labels.get(BIND_LABEL, "")).lower() != "true":
            raise EndpointError(f"container {k} ({c.image}) lacks the image label {BIND_LABEL}=true, which "
                                "SageMaker requires of every container of a multi-container model (M-02)")
        if spec.multi_model and str(labels.get(MULTI_LABEL, "")).lower() != "true":
            raise EndpointError(f"{c.image} lacks the image label {MULTI_LABEL}=true, which SageMaker requires "
                                "of a multi-model container")


def up(state: State, name: str, spec: ModelSpec, *, say: Say = lambda _: None,
       ready_timeout: float = 300) -> Endpoint:
    """Start the model's containers, wait until every one answers ``/ping``, record the endpoint.
    On any failure nothing is left behind (containers, record, extracted models)."""
    try:
        check_name(name)
    except ValueError as exc:
        raise EndpointError(str(exc)) from None
    if state.load(name) is not None:
        raise EndpointError(f"endpoint {name} exists already: `rosetta endpoint down {name}` first, or pick "
                            "another name")
    _check_images(spec)
    state.forget(name)  # leftovers of an `up` that was killed
    endpoint_id = f"{name}-{uuid.uuid4().hex[:8]}"
    labels = {LABEL: f"endpoint-{endpoint_id}", ENDPOINT_LABEL: endpoint_id, NAME_LABEL: name,
              STATE_LABEL: str(state.root)}
    n = len(spec.containers)
    wanted = ports(n)
    pod = Pod(wanted)
    servers: list[Server] = []
    try:
        for c, port in zip(spec.containers, wanted, strict=True):
            env = dict(c.environment)
            if n > 1:
                env["SAGEMAKER_BIND_TO_PORT"] = str(port)
                env["SAGEMAKER_SAFE_PORT_RANGE"] = f"{port + 1}-{port + STEP - 1}"
            if spec.multi_model:
                env["SAGEMAKER_MULTI_MODEL"] = "true"
                folder = extracted_root(state, name)
                folder.mkdir(parents=True, exist_ok=True)
                folder.chmod(0o755)
                volumes = {folder: f"{MODELS_ROOT}:ro"}
            else:
                if c.model_data:
                    say(f"{c.hostname}: model {c.model_data}")
                folder = materialize(c.model_data, state.models(name) / c.hostname, store=spec.store,
                                     s3_endpoint_url=spec.s3_endpoint_url)
                volumes = {folder: "/opt/ml/model:ro"}
            say(f"starting {c.hostname} ({c.image})" + (f" on port {port}" if n > 1 else ""))
            servers.append(pod.server(c.image, port=port, env=env, volumes=volumes, labels=labels,
                                      name=container_name(f"ep-{name}-{c.hostname}")))
        _wait_all(spec, servers, ready_timeout, say)
        members = [Member(c.hostname, c.image, s.port, s.host_port, s.name, c.model_data or "", c.environment)
                   for c, s in zip(spec.containers, servers, strict=True)]
        mode = "MultiModel" if spec.multi_model else ("Single" if n == 1 else spec.mode)
        multi = None
        if spec.multi_model:
            multi = {"source": spec.multi_model, "store": spec.store, "s3_endpoint_url": spec.s3_endpoint_url}
        endpoint = Endpoint(name, mode, members, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                            endpoint_id, spec.source, multi_model=multi)
        state.save(endpoint)
        return endpoint
    except BaseException:
        pod.remove()
        remove_labelled(f"{ENDPOINT_LABEL}={endpoint_id}")
        state.forget(name)
        raise


def _wait_all(spec: ModelSpec, servers: list[Server], timeout: float, say: Say) -> None:
    """Wait for every container's /ping in parallel; the first failure names its container."""
    failures: list[str] = []

    def wait(k: int, server: Server) -> None:
        try:
            seconds = server.wait_ready(timeout)
            say(f"{spec.containers[k].hostname} ready in {seconds:.1f} s")
        except (RuntimeError, TimeoutError) as exc:
            first, _, rest = str(exc).partition("\n")
            failures.append(f"container {k + 1} ({spec.containers[k].hostname}, {server.image}) did not become "
                            f"ready: {first}\n{rest.strip()}")

    threads = [threading.Thread(target=wait, args=(k, s), daemon=True) for k, s in enumerate(servers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise EndpointError(sorted(failures)[0])


def down(state: State, name: str) -> int:
    """Remove the endpoint's containers and its state; how many containers were removed.
    Also removes the containers of a record that was lost (labelled with this state and name)."""
    endpoint = state.load(name)
    removed = 0
    if endpoint is not None:
        state.record(name).unlink(missing_ok=True)  # the front stops routing to it first
        removed += remove_labelled(f"{ENDPOINT_LABEL}={endpoint.id}")
    removed += _remove_strays(state, name)
    if endpoint is None and not removed:
        known = ", ".join(state.names()) or "none"
        raise EndpointError(f"no endpoint {name} in {state.root} (endpoints: {known})")
    state.forget(name)
    return removed


def _remove_strays(state: State, name: str) -> int:
    from sagemaker_rosetta import dockerapi

    with dockerapi.translated("list containers"):
        found = dockerapi.api().containers(all=True, filters={"label": f"{NAME_LABEL}={name}"})
    ids = {str(c["Labels"].get(ENDPOINT_LABEL)) for c in found
           if c.get("Labels", {}).get(STATE_LABEL) == str(state.root)}
    return sum(remove_labelled(f"{ENDPOINT_LABEL}={i}") for i in ids)


def status(endpoint: Endpoint) -> str:
    """``InService`` when every container runs, else which ones stopped."""
    from sagemaker_rosetta.containers import Container

    stopped = [m.hostname for m in endpoint.members if not Container(m.image, name=m.container).running()]
    return "InService" if not stopped else f"Failed ({', '.join(stopped)} stopped)"
