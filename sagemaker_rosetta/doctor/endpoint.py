"""Doctor a running local endpoint (``rosetta endpoint up``): each container's state, exit code, /ping
answer and its time, the port it listens on, its image's platform and a development server in its logs."""

from __future__ import annotations

import http.client
from pathlib import Path

from sagemaker_rosetta import containers, httpclient
from sagemaker_rosetta.doctor import exitcodes
from sagemaker_rosetta.doctor.findings import Finding, dedupe
from sagemaker_rosetta.doctor.folder import JobRecord, platform_findings
from sagemaker_rosetta.doctor.image import DEBUGGER_LOG, DEV_SERVER_LOG, Diagnosis, debug_server_findings

#: SageMaker's /ping timeout
PING_SECONDS = 2.0


class EndpointError(ValueError):
    """No such endpoint (or ``rosetta endpoint`` is not available); the message says what to do."""


def diagnose_endpoint(name: str, *, state_root: Path | None = None) -> Diagnosis:
    """Findings for each container of the local endpoint ``name``."""
    try:
        from sagemaker_rosetta.endpoint.state import State
    except ImportError as exc:
        raise EndpointError(f"local endpoints are not available in this installation ({exc})") from exc
    from rosetta_conformance import wire

    state = State(state_root)
    ep = state.load(name)
    if ep is None:
        known = ", ".join(state.names()) or "none"
        raise EndpointError(f"no local endpoint named {name!r} (running: {known}); see rosetta endpoint ls")
    findings: list[Finding] = []
    for m in ep.members:
        who = f"{name}/{m.hostname}"
        box = containers.Container("", name=m.container)
        try:
            running = box.running()
        except containers.DockerError:
            findings.append(Finding("S-08", f"{who}: its container {m.container} is gone", "rosetta endpoint down "
                                    f"{name}, then up again; look at the logs if it fails again", "no container"))
            continue
        logs, server_header = "", ""
        try:
            logs = box.logs()[-20000:]
        except containers.DockerError:
            pass
        if not running:
            code = box.exit_code()
            explained = exitcodes.explain(code, word="serve", reason=logs[-400:])
            findings.append(explained or Finding("S-08", f"{who}: `serve` exited {code}: `did not pass the ping "
                                                 "health check` on AWS", "read the container's last log lines "
                                                 "(rosetta endpoint logs)", logs.strip().splitlines()[-1][:160]
                                                 if logs.strip() else f"exit {code}"))
        else:
            ping, server_header = _ping(who, m.host_port)
            findings += ping
            found = wire.listeners(m.container) or []
            mine = [ln for ln in found if ln.port == m.port]
            if found and not mine:
                clause = "S-03" if m.port == 8080 else "S-04"
                findings.append(Finding(clause, f"{who}: nothing listens on port {m.port}" + (
                    " (SAGEMAKER_BIND_TO_PORT ignored)" if clause == "S-04" else ""),
                    "listen on $SAGEMAKER_BIND_TO_PORT when set, else 8080",
                    f"listening: {sorted({ln.port for ln in found})}"))
            elif mine and all(wire.is_loopback(ln.address) for ln in mine):
                findings.append(Finding("S-05", f"{who}: port {m.port} listens on loopback only", "bind to 0.0.0.0",
                                        mine[0].address))
        debug = [x.group(0) for x in [DEBUGGER_LOG.search(logs)] if x]
        dev = [server_header] if "werkzeug" in server_header.lower() else []
        if DEV_SERVER_LOG.search(logs):
            dev.append("Werkzeug in its log")
        findings += debug_server_findings(werkzeug=bool(dev or debug), debug=debug, devserver=dev,
                                          where=f"{who}'s log and answers")
        findings += platform_findings(JobRecord(name=who, word="serve", status="", image=m.image))
    return Diagnosis(f"endpoint {name}", dedupe(findings))


def _ping(who: str, port: int) -> tuple[list[Finding], str]:
    """Findings of one timed ``GET /ping``, and the answer's ``Server`` header."""
    try:
        r = httpclient.request(port, "GET", "/ping", None, None, 10)
    except (OSError, http.client.HTTPException) as exc:
        return [Finding("S-03", f"{who}: GET /ping gets no answer: `did not pass the ping health check`",
                        "serve /ping on 0.0.0.0:8080 (or $SAGEMAKER_BIND_TO_PORT)", type(exc).__name__)], ""
    out = []
    if r.status != 200:
        out.append(Finding("S-08", f"{who}: GET /ping answers {r.status}: SageMaker takes the instance out",
                           "answer 200 once the model is loaded", f"status {r.status}"))
    if r.seconds > PING_SECONDS:
        out.append(Finding("S-07", f"{who}: GET /ping took {r.seconds:.1f} s (SageMaker waits 2 s)",
                           "answer /ping from its own thread/worker, never behind a prediction", f"{r.seconds:.1f} s"))
    server = r.headers.get("server", "")  # header names come lower-cased
    return out, f"Server: {server}" if server else ""
