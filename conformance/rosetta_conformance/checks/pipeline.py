"""M-01: the image as a member of a serial inference pipeline (or a multi-container endpoint).

SageMaker runs a pipeline's 2-15 containers on one instance and chains them: "the first container
in the pipeline handles the initial request, then the intermediate response is sent as a request to
the second container, and so on" (https://docs.aws.amazon.com/sagemaker/latest/dg/inference-pipelines.html);
each container gets its own SAGEMAKER_BIND_TO_PORT and SAGEMAKER_SAFE_PORT_RANGE
(https://docs.aws.amazon.com/sagemaker/latest/dg/inference-pipeline-real-time.html). How the
Content-Type travels between containers is not documented; the suite asks for what any chain
needs: the image takes its own payload types with no Accept (the predecessor's answer carries only
a Content-Type) and answers with a media type the manifest says it takes or declares as output.
Two copies of the image share one network namespace here, as containers of one instance do.
"""

from __future__ import annotations

import http.client
import time

from rosetta_conformance import wire
from rosetta_conformance.checks import check
from rosetta_conformance.harness import Harness
from rosetta_conformance.outcome import Blocked, Outcome
from sagemaker_rosetta import containers
from sagemaker_rosetta.containers import Response, Server
from sagemaker_rosetta.networks import Pod

#: each copy's SAGEMAKER_BIND_TO_PORT and SAGEMAKER_SAFE_PORT_RANGE (disjoint, away from 8080)
MEMBERS = ((9201, (29100, 29109)), (9202, (29110, 29119)))


def _show(r: Response | None) -> str:
    if r is None:
        return "no answer"
    return f"{r.status} {r.headers.get('content-type', '')} {wire.short(r.body, 60)}"


def _answer(server: Server, body: bytes, ctype: str, deadline: float) -> Response | None:
    """The payload as a predecessor sends it (Content-Type, no Accept); waits out 'still loading' (503)."""
    r: Response | None = None
    while time.monotonic() < deadline:
        try:
            r = server.invoke(body, ctype, accept=None)
        except (OSError, http.client.HTTPException):
            r = None
        if r is not None and r.status != 503:
            return r
        if not server.running():
            return r
        time.sleep(0.2)
    return r


def _ready(server: Server, namespace: str, deadline: float) -> str:
    """'' once /ping is 200, else why not (at once when 8080 listens instead of the bind port)."""
    while time.monotonic() < deadline:
        try:
            if server.request("GET", "/ping", timeout=5).status == 200:
                return ""
        except (OSError, http.client.HTTPException):
            pass
        if not server.running():
            return f"exited ({server.exit_code()}): {server.logs()[-300:]}"
        ports = {ln.port for ln in wire.listeners(namespace) or []}
        if 8080 in ports and server.port not in ports:
            return f"8080 listens, {server.port} does not: SAGEMAKER_BIND_TO_PORT ignored"
        time.sleep(0.2)
    return "no /ping 200"


@check("M-01")
def chain_member(h: Harness) -> Outcome:
    h.ready("main")  # a server that cannot serve alone is S-01 … S-08's business
    sv = h.manifest.serving
    accepted = {p.content_type.lower() for p in sv.payloads} | set(sv.output_types)
    sent = "two copies in one network namespace: " + ", ".join(
        f"SAGEMAKER_BIND_TO_PORT={port} SAGEMAKER_SAFE_PORT_RANGE={lo}-{hi}" for port, (lo, hi) in MEMBERS) + \
        "; GET /ping and every payload (no Accept) on each"
    wrong: list[str] = []
    seen: list[str] = []
    with Pod(ports=[port for port, _ in MEMBERS]) as pod:
        members: list[Server] = []
        for i, (port, (lo, hi)) in enumerate(MEMBERS, 1):
            try:
                members.append(pod.server(
                    h.image, port=port, labels=h.labels, name=containers.container_name(f"conform-chain-{i}"),
                    volumes={h.fresh_model_dir(f"chain-{i}"): "/opt/ml/model"},
                    env={**sv.env, "SAGEMAKER_BIND_TO_PORT": str(port), "SAGEMAKER_SAFE_PORT_RANGE": f"{lo}-{hi}"}))
            except RuntimeError as exc:
                return Outcome(False, f"copy {i} could not start beside copy 1: {exc}", sent, "")
        deadline = time.monotonic() + sv.ready_timeout
        for i, (server, (port, _)) in enumerate(zip(members, MEMBERS, strict=True), 1):
            why = _ready(server, members[0].name, deadline)
            if why:
                wrong.append(f"copy {i} on {port}: {why}")
        found = wire.listeners(members[0].name)
        if found is None:
            if wrong:  # a copy that exited (the namespace's owner takes it along): that is the finding
                return Outcome(False, "; ".join(wrong), sent, " | ".join(seen))
            raise Blocked("M-03", "cannot read the listening sockets of the namespace")
        ports = sorted({ln.port for ln in found})
        seen.append(f"listening: {ports}")
        allowed = {port for port, _ in MEMBERS}
        stray = [p for p in ports if p not in allowed and not any(lo <= p <= hi for _, (lo, hi) in MEMBERS)]
        if stray:
            wrong.append(f"ports outside both bind ports and safe ranges: {stray}"
                         + (" (8080: SAGEMAKER_BIND_TO_PORT ignored)" if 8080 in stray else ""))
        if not wrong:
            for i, server in enumerate(members, 1):
                for p in sv.payloads:
                    r = _answer(server, p.body, p.content_type, deadline)
                    seen.append(f"copy {i} {p.content_type}: {_show(r)}")
                    if r is None or r.status != 200:
                        wrong.append(f"copy {i}: {p.content_type} as a predecessor sends it → {_show(r)}")
                        continue
                    media = r.headers.get("content-type", "").split(";")[0].strip().lower()
                    if media not in accepted:
                        wrong.append(f"copy {i}: answers {p.content_type} with {media or 'no Content-Type'!r}, which "
                                     f"no container of the chain is known to take (the image's types: "
                                     f"{sorted(accepted)}; declare others in [serving] output_types)")
    return Outcome(not wrong, "; ".join(wrong), sent, " | ".join(seen))
