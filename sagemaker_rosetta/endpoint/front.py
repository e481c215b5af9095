"""The front: SageMaker Runtime's HTTP API on 127.0.0.1 for every endpoint of a state folder.

``POST /endpoints/{EndpointName}/invocations`` with InvokeEndpoint's headers, answered with its
response headers and error shapes, so ``boto3.client("sagemaker-runtime", endpoint_url=URL)``
works unchanged. FastAPI validates the path and the headers against the service model's
constraints (a violation is a ``ValidationError``, as SageMaker answers it) and serves the OpenAPI
document (``/openapi.json``, ``/docs``). The containers keep their own servers: the front only
forwards (:mod:`.routing`).

Run detached by ``rosetta endpoint up`` (``python -m sagemaker_rosetta.endpoint.front --state DIR``);
it writes ``front.json`` once it listens, and exits by itself when ``front.json`` stops naming it
(``rosetta endpoint down`` of the last endpoint, or the state folder removed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import socket
import sys
import threading
import uuid
from typing import Annotated

import uvicorn
from fastapi import FastAPI, Header, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from sagemaker_rosetta.endpoint import errors
from sagemaker_rosetta.endpoint.routing import Invocation, Router
from sagemaker_rosetta.endpoint.state import NAME, NAME_MAX, State, write_atomic

log = logging.getLogger("rosetta.endpoint.front")

#: the service model's constraints, in the regular-expression dialect FastAPI (pydantic-core) speaks
_ASCII = r"^[\x00-\x7f]*$"
_PRINT = r"^\S[\x20-\x7e]*$"
_HOST = NAME.pattern


def _error(exc: errors.ApiError, request_id: str) -> Response:
    return Response(exc.body(), status_code=exc.status, media_type="application/json",
                    headers={**exc.headers(), "x-amzn-RequestId": request_id})


def create_app(state: State, router: Router | None = None) -> FastAPI:
    routes = router or Router(state)
    app = FastAPI(title="Rosetta local SageMaker Runtime",
                  description="InvokeEndpoint for the local endpoints of one state folder (`rosetta endpoint`).",
                  version="2017-05-13")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ())[1:]) or "request"
            problems.append(f"Value at '{where}' failed to satisfy constraint: {e.get('msg')}")
        n = len(problems)
        text = f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(problems)
        return _error(errors.validation_error(text), str(uuid.uuid4()))

    @app.get("/ping", summary="the front answers (not an AWS API)")
    def ping() -> dict[str, object]:
        return {"status": "ok", "endpoints": state.names()}

    @app.get("/endpoints", summary="the endpoints served (local only; not an AWS API)")
    def endpoints() -> JSONResponse:
        out = []
        for name in state.names():
            ep = state.load(name)
            if ep is not None:
                out.append({"EndpointName": ep.name, "Mode": ep.mode, "CreationTime": ep.created,
                            "Containers": [{"ContainerHostname": m.hostname, "Image": m.image} for m in ep.members]})
        return JSONResponse({"Endpoints": out})

    @app.post("/endpoints/{endpoint_name}/invocations", summary="InvokeEndpoint",
              response_class=Response, responses={424: {"description": "ModelError"},
                                                  400: {"description": "ValidationError"}})
    async def invoke(
        request: Request,
        endpoint_name: Annotated[str, Path(max_length=NAME_MAX, pattern=NAME.pattern)],
        content_type: Annotated[str | None, Header(alias="Content-Type", max_length=1024, pattern=_ASCII)] = None,
        accept: Annotated[str | None, Header(alias="Accept", max_length=1024, pattern=_ASCII)] = None,
        custom_attributes: Annotated[str | None, Header(alias="X-Amzn-SageMaker-Custom-Attributes", max_length=1024,
                                                        pattern=_ASCII)] = None,
        target_model: Annotated[str | None, Header(alias="X-Amzn-SageMaker-Target-Model", min_length=1,
                                                   max_length=1024, pattern=_PRINT)] = None,
        target_variant: Annotated[str | None, Header(alias="X-Amzn-SageMaker-Target-Variant", max_length=63,
                                                     pattern=_HOST)] = None,
        target_container_hostname: Annotated[str | None, Header(alias="X-Amzn-SageMaker-Target-Container-Hostname",
                                                                max_length=63, pattern=_HOST)] = None,
        inference_id: Annotated[str | None, Header(alias="X-Amzn-SageMaker-Inference-Id", min_length=1,
                                                   max_length=64, pattern=_PRINT)] = None,
    ) -> Response:
        request_id = str(uuid.uuid4())
        inv = Invocation(await request.body(), content_type, accept, custom_attributes, target_model,
                         target_container_hostname, target_variant, inference_id)
        try:
            answer = await run_in_threadpool(routes.invoke, endpoint_name, inv)
        except errors.ApiError as exc:
            if exc.code != "ValidationError":
                log.warning("%s %s: %s", endpoint_name, request_id, exc)
            return _error(exc, request_id)
        except Exception as exc:  # a bug here must still answer in the service's shape
            log.exception("%s %s: front failure", endpoint_name, request_id)
            return _error(errors.internal_failure(f"the local endpoint front failed: {exc}"), request_id)
        headers = {"x-Amzn-Invoked-Production-Variant": answer.variant, "x-amzn-RequestId": request_id}
        if answer.custom_attributes is not None:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = answer.custom_attributes
        return Response(answer.body, media_type=answer.content_type, headers=headers)

    return app


def _watch(state: State, server: uvicorn.Server) -> None:
    """Exit once front.json no longer names this process (``down`` of the last endpoint, state removed)."""
    me = os.getpid()
    while not server.should_exit:
        threading.Event().wait(2)
        info = state.front()
        if not info or info.get("pid") != me:
            server.should_exit = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sagemaker_rosetta.endpoint.front")
    parser.add_argument("--state", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    state = State(args.state)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", args.port))
    except OSError as exc:
        print(f"cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr, flush=True)
        return 2
    sock.listen(2048)
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(create_app(state), log_level="warning", access_log=False, timeout_keep_alive=30)
    server = uvicorn.Server(config)
    write_atomic(state.front_file, json.dumps({
        "pid": os.getpid(), "port": port, "url": f"http://127.0.0.1:{port}",
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}, indent=2))
    log.info("front of %s listening on http://127.0.0.1:%d", state.root, port)
    threading.Thread(target=_watch, args=(state, server), daemon=True).start()
    server.run(sockets=[sock])
    info = state.front()
    if info and info.get("pid") == os.getpid():
        state.front_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
