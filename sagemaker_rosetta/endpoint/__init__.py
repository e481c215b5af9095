"""Local SageMaker endpoints: SageMaker Runtime's API on 127.0.0.1 in front of Docker containers.

``rosetta endpoint up|invoke|logs|ls|down|url`` (:mod:`.cli`); docs/endpoints.md is the guide.

- :mod:`.spec`: what an endpoint serves (one container, a multi-container model, a multi-model
  prefix) from the command line, a CreateModel JSON, a local pipeline run or the model registry;
  model data materialized as SageMaker hands it to ``serve``.
- :mod:`.deploy`: the containers in one network namespace (a :class:`~sagemaker_rosetta.networks.Pod`),
  each on its own ``SAGEMAKER_BIND_TO_PORT``; ``up`` and ``down``.
- :mod:`.state`: the state folder that lets endpoints outlive the command (records, the front's address).
- :mod:`.daemon`: the detached front process (one per state folder).
- :mod:`.front`: the FastAPI application (``POST /endpoints/{name}/invocations``).
- :mod:`.routing`: one invocation through the containers (Serial, Direct, single), SageMaker's
  error shapes (:mod:`.errors`), keep-alive connections (:mod:`.pool`).
- :mod:`.multimodel`: ``TargetModel`` on a multi-model endpoint (load on first use, LRU unload on 507).

In Python::

    from sagemaker_rosetta.endpoint import State, deploy, daemon, spec
    state = State("/tmp/eps")
    deploy.up(state, "iris", spec.from_command_line(image="rosetta-example/iris-python:latest",
                                                    model="model.tar.gz", containers=[], hostnames=[],
                                                    env=[], mode="serial"))
    url = daemon.ensure_front(state)      # boto3.client("sagemaker-runtime", endpoint_url=url)
    deploy.down(state, "iris"); daemon.stop_front(state)
"""

from sagemaker_rosetta.endpoint.errors import ApiError, EndpointError
from sagemaker_rosetta.endpoint.state import Endpoint, Member, State

__all__ = ["ApiError", "Endpoint", "EndpointError", "Member", "State"]
