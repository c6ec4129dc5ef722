"""The job sandbox against a real dockerd, with the busybox image built locally (no registry).

Every test runs real containers; hostile jobs must end as failed/timed-out results without
touching the host or other jobs, and nothing may be left behind (checked after every test).
"""

from __future__ import annotations

import io
import socket
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from agent.errors import GpuUnavailable, ImageNotAvailable, InvalidSandboxRequest
from agent.images import ensure_busybox_image
from agent.packing import Entry, pack
from agent.sandbox import LABEL_OWNER, LABEL_ROLE, JobStatus, Sandbox, SandboxRequest, SandboxResult

MiB = 1 << 20


@pytest.fixture(scope="module")
def busybox(docker_client: Any) -> str:
    """The pinned (by ID) busybox image, built from /bin/busybox on first use."""
    return ensure_busybox_image(docker_client).id


def _leftovers(client: Any, owner: str) -> list[str]:
    label = {"label": f"{LABEL_OWNER}={owner}"}
    containers = [c.name for c in client.containers.list(all=True, filters=label)]
    return containers + [v.name for v in client.volumes.list(filters=label)]


@pytest.fixture()
def sandbox(docker_client: Any, busybox: str, tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox with its own owner label and work dir; afterwards nothing of it may remain."""
    owner = f"test-{uuid.uuid4().hex[:10]}"
    work_dir = tmp_path / "work"
    box = Sandbox(docker_client, helper_image=busybox, owner=owner, work_dir=work_dir)
    try:
        yield box
    finally:
        box.close()
    assert _leftovers(docker_client, owner) == []
    assert list(work_dir.iterdir()) == []


def _job(busybox: str, script: str, **kwargs: Any) -> SandboxRequest:
    kwargs.setdefault("timeout_seconds", 10)
    kwargs.setdefault("memory_bytes", 64 * MiB)
    return SandboxRequest(image=busybox, command=["sh", "-c", script], **kwargs)


def _files(result: SandboxResult) -> dict[str, bytes]:
    assert result.output is not None
    with tarfile.open(fileobj=io.BytesIO(result.output.tar)) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}  # type: ignore[union-attr]


# --- normal jobs and deterministic output ---

WRITE_IN_ORDER = (
    "cd /outputs && mkdir -p a/b z empty && echo top > top.txt && printf deep > a/b/deep.txt"
    " && printf '#!/bin/sh\\n' > z/tool && chmod 755 z/tool && ln -s tool z/link"
)
WRITE_SHUFFLED = (
    "umask 077 && cd /outputs && mkdir z && ln -s tool z/link && printf '#!/bin/sh\\n' > z/tool"
    " && chmod 700 z/tool && mkdir empty a && mkdir a/b && printf deep > a/b/deep.txt && echo top > top.txt"
    " && touch -d '2001-02-03 04:05:06' top.txt a/b/deep.txt a"
)
EXPECTED_TREE = [
    Entry.file("top.txt", b"top\n"),
    Entry.file("a/b/deep.txt", b"deep"),
    Entry.file("z/tool", b"#!/bin/sh\n", executable=True),
    Entry.symlink("z/link", "tool"),
    Entry.dir("empty"),
]


def test_output_hash_is_identical_across_runs_orders_mtimes_and_umask(sandbox: Sandbox, busybox: str) -> None:
    first = sandbox.run(_job(busybox, WRITE_IN_ORDER))
    second = sandbox.run(_job(busybox, WRITE_IN_ORDER))
    shuffled = sandbox.run(_job(busybox, WRITE_SHUFFLED))
    for result in (first, second, shuffled):
        assert result.status is JobStatus.SUCCEEDED, result
        assert result.exit_code == 0 and result.image_id == busybox
    assert first.output is not None and second.output is not None and shuffled.output is not None
    assert first.output.digest == second.output.digest == shuffled.output.digest
    # ...and it is exactly the canonical tar of the tree the job wrote.
    assert first.output.tar == pack(EXPECTED_TREE).tar


def test_stdout_stderr_and_env_reach_the_result(sandbox: Sandbox, busybox: str) -> None:
    result = sandbox.run(_job(busybox, 'echo "out $GREETING"; echo err >&2; exit 3', env={"GREETING": "hi"}))
    assert result.status is JobStatus.FAILED and result.exit_code == 3
    assert result.stdout_tail == "out hi\n" and result.stderr_tail == "err\n"
    assert result.output is not None  # a failed job's output is kept for diagnosis, never posted


def test_inputs_are_visible_read_only(sandbox: Sandbox, busybox: str, tmp_path: Path) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\x00\x01model")
    script = (
        "cat /inputs/data/in.txt /inputs/weights.bin > /outputs/seen"
        "; echo x > /inputs/data/in.txt && echo WROTE"
        "; touch /inputs/new && echo CREATED"
        "; rm -f /inputs/weights.bin && echo REMOVED"
        "; grep ' /inputs ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1"
    )
    result = sandbox.run(_job(busybox, script, inputs={"data/in.txt": b"hello\n", "weights.bin": weights}))
    assert result.status is JobStatus.SUCCEEDED, result
    assert _files(result) == {"seen": b"hello\n\x00\x01model"}
    assert result.stdout_tail == "ro\n"
    assert result.stderr_tail.count("Read-only file system") == 3
    assert weights.read_bytes() == b"\x00\x01model"


def test_job_runs_as_nobody_without_capabilities(sandbox: Sandbox, busybox: str) -> None:
    script = "id -u; id -g; grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status | tr -s '\\t' ' '"
    result = sandbox.run(_job(busybox, script))
    assert result.stdout_tail.splitlines() == [
        "65534",
        "65534",
        "CapEff: 0000000000000000",
        "CapBnd: 0000000000000000",
        "NoNewPrivs: 1",
    ]


# --- hostile jobs ---


def test_fork_bomb_is_contained_and_other_jobs_keep_running(sandbox: Sandbox, busybox: str) -> None:
    bomb = _job(busybox, "bomb() { bomb | bomb & }; bomb; sleep 30", pids_limit=32, timeout_seconds=3)
    with ThreadPoolExecutor(max_workers=2) as pool:
        bombing = pool.submit(sandbox.run, bomb)
        time.sleep(0.5)
        normal = sandbox.run(_job(busybox, "echo fine > /outputs/ok"))
        bombed = bombing.result()
    assert bombed.status in (JobStatus.TIMED_OUT, JobStatus.FAILED), bombed
    assert "can't fork" in bombed.stderr_tail  # the pids limit, not the timeout, stopped it
    assert normal.status is JobStatus.SUCCEEDED and _files(normal) == {"ok": b"fine\n"}
    assert subprocess.run(["true"], check=False).returncode == 0  # the host still forks


def test_no_network_only_loopback_and_host_services_unreachable(sandbox: Sandbox, busybox: str) -> None:
    accepted: list[object] = []
    done = threading.Event()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))  # a service on the host's loopback
        server.listen()
        server.settimeout(0.1)
        port = server.getsockname()[1]

        def serve() -> None:
            while not done.is_set():
                try:
                    accepted.append(server.accept())
                except TimeoutError:
                    continue

        listener = threading.Thread(target=serve)
        listener.start()
        script = (
            "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > /outputs/interfaces"
            "; ip route > /outputs/routes"
            f"; wget -q -T 2 -O - http://127.0.0.1:{port}/"  # the job's loopback is its own
        )
        try:
            result = sandbox.run(_job(busybox, script))
        finally:
            done.set()
            listener.join()
    assert result.status is JobStatus.FAILED and result.exit_code != 0
    assert _files(result) == {"interfaces": b"lo\n", "routes": b""}
    assert accepted == []


def test_write_to_root_fails(sandbox: Sandbox, busybox: str) -> None:
    result = sandbox.run(_job(busybox, "echo owned > /evil"))
    assert result.status is JobStatus.FAILED and result.exit_code == 1
    assert "Read-only file system" in result.stderr_tail


@pytest.mark.parametrize(
    "command",
    [
        ["dd", "if=/dev/zero", "of=/dev/null", "bs=96M", "count=1"],  # one big buffer
        ["sh", "-c", "head -c 200000000 /dev/zero > /tmp/balloon"],  # tmpfs pages count too
    ],
    ids=["heap", "tmpfs"],
)
def test_memory_balloon_is_oom_killed(sandbox: Sandbox, busybox: str, command: list[str]) -> None:
    request = SandboxRequest(
        image=busybox, command=command, memory_bytes=32 * MiB, tmp_bytes=256 * MiB, timeout_seconds=10
    )
    result = sandbox.run(request)
    assert result.status is JobStatus.OOM_KILLED, result
    assert result.output is None


def test_endless_loop_is_killed_at_the_timeout(sandbox: Sandbox, busybox: str, docker_client: Any) -> None:
    import docker

    result = sandbox.run(_job(busybox, "while :; do :; done", timeout_seconds=2))
    assert result.status is JobStatus.TIMED_OUT and result.output is None
    assert 2 <= result.duration_seconds < 5
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(result.container_name)


def test_output_over_the_limit(sandbox: Sandbox, busybox: str) -> None:
    limit = 64 * 1024
    fits = sandbox.run(_job(busybox, "head -c 40000 /dev/zero > /outputs/f", output_limit_bytes=limit))
    assert fits.status is JobStatus.SUCCEEDED and fits.output is not None and fits.output.size <= limit
    flood = sandbox.run(_job(busybox, "head -c 10000000 /dev/zero > /outputs/f", output_limit_bytes=limit))
    assert flood.status is JobStatus.OUTPUT_TOO_LARGE and flood.output is None
    assert flood.exit_code != 0 and "error" in flood.stderr_tail  # the kernel stopped the write at the cap
    many = sandbox.run(
        _job(busybox, "cd /outputs && for i in $(seq 200); do : > f$i; done", output_limit_bytes=limit)
    )
    assert many.status is JobStatus.OUTPUT_TOO_LARGE  # 200 headers of 512 bytes: over the limit


@pytest.mark.parametrize(
    "script", ["ln -s /etc/passwd /outputs/leak", "ln -s ../../etc /outputs/up", "mkfifo /outputs/pipe"]
)
def test_unsafe_output_is_rejected(sandbox: Sandbox, busybox: str, script: str) -> None:
    result = sandbox.run(_job(busybox, script))
    assert result.status is JobStatus.OUTPUT_REJECTED and result.output is None
    assert "refused" in result.detail


def test_missing_command_fails(sandbox: Sandbox, busybox: str) -> None:
    result = sandbox.run(SandboxRequest(image=busybox, command=["/no/such/binary"], timeout_seconds=10))
    assert result.status is JobStatus.FAILED and result.exit_code == 127


# --- the hardening is really applied ---


def _assert_hardened(attrs: dict[str, Any], pids: int, memory: int) -> None:
    host, config = attrs["HostConfig"], attrs["Config"]
    assert host["NetworkMode"] == "none" and config["NetworkDisabled"] is True
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["Privileged"] is False and not host["Devices"]
    assert config["User"] == "65534:65534"
    assert host["PidsLimit"] == pids
    assert host["Memory"] == memory and host["MemorySwap"] == memory
    binds = [(m["Type"], m["Source"], m["Destination"], m["RW"]) for m in attrs["Mounts"]]
    assert not any("docker.sock" in source or source == "/" for _, source, _, _ in binds)
    assert not host["Binds"]


def test_running_job_container_shows_every_hardening_flag(
    sandbox: Sandbox, busybox: str, docker_client: Any
) -> None:
    request = _job(busybox, "sleep 2", cpus=0.5, pids_limit=48, memory_bytes=48 * MiB, job_id="77")
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(sandbox.run, request)
        owner = f"{LABEL_OWNER}={sandbox.owner}"
        deadline = time.monotonic() + 5
        jobs: list[Any] = []
        while not jobs and time.monotonic() < deadline:
            jobs = docker_client.containers.list(filters={"label": [owner, f"{LABEL_ROLE}=job"]})
            time.sleep(0.05)
        assert len(jobs) == 1
        job = jobs[0]
        holders = docker_client.containers.list(filters={"label": [owner, f"{LABEL_ROLE}=outputs-holder"]})
        result = running.result()
    assert result.status is JobStatus.SUCCEEDED
    attrs, host = job.attrs, job.attrs["HostConfig"]
    assert attrs["State"]["Running"] is True
    _assert_hardened(attrs, pids=48, memory=48 * MiB)
    assert host["NanoCpus"] == 500_000_000
    assert host["IpcMode"] == "private" and host["Init"] is True
    assert {"Name": "nofile", "Soft": 1024, "Hard": 1024} in host["Ulimits"]
    assert "size=" in host["Tmpfs"]["/tmp"] and "noexec" in host["Tmpfs"]["/tmp"]
    assert host["LogConfig"]["Config"]["max-size"]
    assert not host["DeviceRequests"]
    mounts = {m["Destination"]: m for m in attrs["Mounts"]}
    assert set(mounts) == {"/inputs", "/outputs"}
    assert mounts["/inputs"]["Type"] == "bind" and mounts["/inputs"]["RW"] is False
    assert mounts["/outputs"]["Type"] == "volume" and mounts["/outputs"]["RW"] is True
    assert attrs["Config"]["Labels"]["ascendnet.job"] == "77"
    # The outputs holder is hardened the same way, and sees the volume read-only.
    assert holders
    for holder in holders:
        _assert_hardened(holder.attrs, pids=8, memory=16 * MiB)
        assert [m["RW"] for m in holder.attrs["Mounts"]] == [False]


def test_gpu_request_goes_to_dockerd_as_a_device_request(sandbox: Sandbox, busybox: str) -> None:
    # This host's dockerd has no GPU runtime: the job must not quietly run on CPU.
    sandbox.host_gpus = 1
    result = sandbox.run(_job(busybox, "true", gpus=1))
    assert result.status is JobStatus.START_FAILED
    assert "device driver" in result.detail and "gpu" in result.detail


# --- refusals before anything starts ---


def test_refusals_start_nothing(sandbox: Sandbox, busybox: str, docker_client: Any) -> None:
    with pytest.raises(ImageNotAvailable, match="not in the local Docker engine"):
        sandbox.run(SandboxRequest(image="sha256:" + "0" * 64, command=["true"]))
    with pytest.raises(GpuUnavailable, match="1 GPU"):
        sandbox.run(_job(busybox, "true", gpus=1))
    with pytest.raises(InvalidSandboxRequest, match="does not exist"):
        sandbox.run(_job(busybox, "true", inputs={"x": Path("/no/such/file")}))
    assert _leftovers(docker_client, sandbox.owner) == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"user": "0:0"}, "user"),
        ({"user": "root"}, "user"),
        ({"user": "1000:0"}, "user"),
        ({"inputs": {"../escape": b""}}, "inputs"),
        ({"inputs": {"/abs": b""}}, "inputs"),
        ({"env": {"A=B": "x"}}, "env"),
        ({"memory_bytes": 1024}, "memory_bytes"),
        ({"pids_limit": 0}, "pids_limit"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"gpus": 1, "gpu_device_ids": ["0", "1"]}, "gpu_device_ids"),
        ({"image": ""}, "image"),
    ],
)
def test_invalid_requests_are_refused(kwargs: dict[str, Any], field: str) -> None:
    fields: dict[str, Any] = {"image": "img", "command": ["true"], **kwargs}
    with pytest.raises(InvalidSandboxRequest) as info:
        SandboxRequest(**fields)
    assert info.value.field == field


# --- cleanup ---


def test_prewarmed_sandbox_uses_its_spare_and_close_removes_it(
    docker_client: Any, busybox: str, tmp_path: Path
) -> None:
    owner = f"test-prewarm-{uuid.uuid4().hex[:8]}"
    holders = {"label": [f"{LABEL_OWNER}={owner}", f"{LABEL_ROLE}=outputs-holder"]}
    with Sandbox(docker_client, helper_image=busybox, owner=owner, work_dir=tmp_path, prewarm=True) as box:
        first = box.run(_job(busybox, "echo 1 > /outputs/n"))
        assert box._refill is not None
        box._refill.result(timeout=30)  # the spare is made while a job runs
        spare = box._spare
        assert spare is not None
        assert spare.holder.name in [c.name for c in docker_client.containers.list(filters=holders)]
        second = box.run(_job(busybox, "echo 1 > /outputs/n"))
        assert box._spare is not spare  # the second job took it
    assert first.succeeded and second.succeeded and first.output == second.output
    assert _leftovers(docker_client, owner) == []


def test_cleanup_leftovers_removes_what_a_crash_left(
    sandbox: Sandbox, busybox: str, docker_client: Any
) -> None:
    # Simulate a crash mid-job: a labelled container, volume and stage dir with no run() to remove them.
    labels = {LABEL_OWNER: sandbox.owner, LABEL_ROLE: "job"}
    docker_client.containers.create(busybox, ["true"], labels=labels, network_disabled=True)
    docker_client.volumes.create(labels=labels)
    (sandbox.work_dir / f"{sandbox.stage_prefix}crashed").mkdir()
    assert sandbox.cleanup_leftovers() == 3
    assert _leftovers(docker_client, sandbox.owner) == []
