"""The one Docker layer (sagemaker_rosetta: containers, networks, local_images) against the real engine.

Small containers of the Debian base image (and the Python runtime image where a program must listen),
so each test takes about a second on a quiet machine.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rosetta_testkit.jobs import eventually
from sagemaker_rosetta import containers, images, local_images
from sagemaker_rosetta.containers import Container, RunTimeout, Server, run
from sagemaker_rosetta.networks import Network, Pod

pytestmark = pytest.mark.docker

BASE = "debian:bookworm-slim"
PYTHON = images.tag("python")  # an image with python3, for a program that listens


def exists(name: str) -> bool:
    try:
        Container("", name=name).inspect()
    except containers.NotFound:
        return False
    return True


def test_run_separates_streams_and_gives_the_exit_code() -> None:
    res = run(BASE, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (res.returncode, res.stdout, res.stderr) == (3, "out\n", "err\n")
    assert not exists(res.name)  # removed


def test_run_keywords_and_cli_flags_agree(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("mounted\n")
    tmp_path.chmod(0o755)  # readable by the container's user 1000
    kw = run(BASE, ["-c", "id -u; cat /data/in.txt; echo $X"], entrypoint="sh", user="1000", env={"X": "1"},
             volumes={tmp_path: "/data:ro"})
    flags = run(BASE, ["-c", "id -u; cat /data/in.txt; echo $X"], extra=["--entrypoint", "sh", "--user", "1000",
                                                                          "-e", "X=1"], volumes={tmp_path: "/data:ro"})
    assert kw.stdout == flags.stdout == "1000\nmounted\n1\n"
    assert run(BASE, ["-c", "touch /data/x"], entrypoint="sh", volumes={tmp_path: "/data:ro"}).returncode != 0
    with pytest.raises(ValueError, match="--privileged"):
        run(BASE, ["true"], extra=["--privileged", "x"])


def test_cannot_start_gives_docker_runs_codes() -> None:
    missing = run("rosetta-test/no-such-image:never", ["x"])
    assert missing.returncode == 125 and "no-such-image" in missing.stderr
    no_command = run(BASE, ["no-such-command"])
    assert no_command.returncode == 127 and "no-such-command" in no_command.stderr


def test_run_timeout_raises_and_removes() -> None:
    name = containers.container_name("timeout")
    t0 = time.monotonic()
    with pytest.raises(RunTimeout):
        run(BASE, ["sleep", "60"], timeout=2, name=name)
    assert time.monotonic() - t0 < 20 and not exists(name)


def test_container_lifecycle_streams_lines_until_exit() -> None:
    job = Container(BASE, ["sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.2; done; exit 7"]).start()
    try:
        assert list(job.lines()) == ["line 1", "line 2", "line 3"]  # live, then ends with the container
        assert job.wait_exit(10) == 7 and job.exit_code() == 7 and not job.running()
        assert job.kill("TERM") is False  # not running
    finally:
        job.remove()
    job.remove()  # twice: quiet
    assert job.logs() == "" and job.wait_exit(1) is None


def test_stop_kill_exec_processes() -> None:
    job = Container(BASE, ["sh", "-c", "trap 'exit 0' TERM; sleep 60 & wait"]).start()
    try:
        assert job.running() and job.pid() is not None
        assert job.exec("sh", "-c", "echo $((1 + 2))").stdout == "3\n"
        assert any("sleep 60" in p.args for p in job.processes())
        t0 = time.monotonic()
        assert job.stop(timeout=20) == 0 and time.monotonic() - t0 < 10  # SIGTERM handled, no SIGKILL
    finally:
        job.remove()


def test_close_streams_ends_a_reader_from_another_thread() -> None:
    """What Ctrl-C does to a step thread reading a job's output: the read ends at once."""
    job = Container(BASE, ["sh", "-c", "echo started; sleep 60"]).start()
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(job.lines()))
    reader.start()
    try:
        assert eventually(lambda: seen == ["started"], 10)
        job.close_streams()
        reader.join(10)
        assert not reader.is_alive() and job.running()
    finally:
        job.remove()


def test_threads_share_the_layer() -> None:
    """Eight threads run containers at once (each thread has its own engine client)."""
    results: dict[int, str] = {}

    def one(i: int) -> None:
        results[i] = run(BASE, ["sh", "-c", f"echo {i}"]).stdout

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == {i: f"{i}\n" for i in range(8)}


def test_network_hostnames_and_aliases() -> None:
    with Network() as net:
        algo1 = Container(BASE, ["sleep", "60"], network=net, hostname="algo-1", aliases=("leader",)).start()
        try:
            res = run(BASE, ["sh", "-c", "getent hosts algo-1 leader | wc -l; hostname"], network=net,
                      hostname="algo-2")
            assert res.stdout.split() == ["2", "algo-2"]
            assert algo1.ip_address(net).count(".") == 3
            assert net.containers() == [algo1.name]
        finally:
            net.remove()  # with a container still attached: disconnected first
            algo1.remove()
    with pytest.raises(containers.NotFound):
        net.containers()


def test_pod_members_share_localhost_and_the_owners_ports() -> None:
    with Pod(ports=[8080, 8081]) as pod:
        owner = pod.server(PYTHON, args=["python3", "-m", "http.server", "8080"], entrypoint="")
        member = pod.server(PYTHON, port=8081, args=["python3", "-m", "http.server", "8081", "-d", "/etc"],
                            entrypoint="")
        assert member.network_mode == f"container:{owner.name}"
        assert eventually(lambda: _get(member, "/hostname") is not None, 30)
        assert member.host_port != owner.host_port  # both published by the owner on 127.0.0.1
        reach = pod.container(BASE, args=["-c", "exec 3<>/dev/tcp/127.0.0.1/8081 && echo reached"],
                              entrypoint="bash")
        assert reach.wait_exit(30) == 0 and "reached" in reach.logs()
    assert not exists(owner.name) and not exists(member.name)


def _get(server: Server, path: str) -> int | None:
    try:
        return server.request("GET", path, timeout=2).status
    except OSError:
        return None


CHILD = """
from sagemaker_rosetta.containers import Container, cleanup_all
from sagemaker_rosetta.networks import Network
net = Network().create()
job = Container("debian:bookworm-slim", ["sleep", "60"], network=net).start()
print(job.name, net.name, flush=True)
cleanup_all()  # what the CLI does on Ctrl-C
"""


def test_cleanup_all_removes_this_processs_containers_and_networks() -> None:
    """Another process's cleanup_all removes its own container and network, and nothing of ours."""
    ours = Container(BASE, ["sleep", "60"]).start()
    try:
        res = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, check=False)
        assert res.returncode == 0, res.stderr[-2000:]
        job, net = res.stdout.split()
        assert not exists(job) and ours.running()
        with pytest.raises(containers.NotFound):
            Network(net).containers()
    finally:
        ours.remove()


def test_image_metadata_and_files() -> None:
    assert local_images.exists(BASE) and not local_images.exists("rosetta-test/no-such-image:never")
    assert local_images.architecture(BASE) in {"amd64", "arm64"}
    assert local_images.config(PYTHON)["Entrypoint"] == ["rosetta-entrypoint"]
    assert "debian_version" in [Path(f).name for f in local_images.list_files(BASE, "/etc") or []]
    assert local_images.list_files(BASE, "/no/such/dir") is None
    with pytest.raises(containers.NotFound):
        local_images.inspect("rosetta-test/no-such-image:never")
