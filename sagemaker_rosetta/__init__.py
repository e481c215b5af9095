"""Rosetta's CLI, its image table and builds, and the one layer that talks to the Docker engine.

Everything that runs, waits for, inspects or removes containers, networks and images goes through
this package (on the Docker SDK for Python); the conformance suite, the orchestrator, the tests and
the benchmarks call it and never the docker CLI.

- :mod:`.dockerapi`: the engine client (one per thread) and the errors callers catch
  (``DockerError``, ``NotFound``, ``EngineUnreachable``).
- :mod:`.containers`: ``run`` (to completion, output captured), ``Container`` (detached: wait,
  logs, ``lines()`` streamed, kill, stop, exec, processes, remove; on a network under a hostname
  and aliases, or in another container's namespace), ``Server`` (a port published on 127.0.0.1,
  HTTP helpers), ``serving()``, ``cleanup_all()`` / ``remove_labelled()``; every container carries
  the run's label.
- :mod:`.networks`: ``Network`` (a per-job bridge network) and ``Pod`` (containers sharing one
  network namespace, as a multi-container endpoint's containers do).
- :mod:`.local_images`: inspect, exists, config, labels, architecture, files in an image, pull,
  import, tag, push.
- :mod:`.registry`: tag and push to a registry, ECR credentials from boto3.
- :mod:`.images`: the table of image names (runtime, example and test images) and the builds,
  which use the docker CLI because BuildKit's build secrets need it.
- :mod:`.engine`: find, install or start the engine; seed the base images.
- :mod:`.mlroot`: a fake ``/opt/ml`` and ``model.tar.gz`` in and out.
"""
