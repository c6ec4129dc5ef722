"""The hardened Docker sandbox that runs one job and packs its output.

A job gets one container with no network, a read-only root, every capability dropped,
no-new-privileges, a non-root user, pids/memory/CPU limits and no swap, a size-limited noexec
tmpfs at /tmp, its inputs read-only at /inputs, and /outputs on a size-limited tmpfs. The
wall-clock timeout kills it. GPUs are passed only through device requests, only when asked for.
The container, the outputs volume and the staged inputs are removed in every outcome; everything
carries the labels below, so `Sandbox.cleanup_leftovers` finds what a crash left behind.

Why /outputs is a tmpfs *volume* held by a second container: the output limit must be enforced by
the kernel while the job writes, not discovered afterwards on a full disk. A bind-mounted host
directory cannot be capped without quotas, and a container's own `--tmpfs` vanishes the moment the
job exits, before it can be copied out. A `local` volume of type tmpfs with a `size=` option is
capped by the kernel (writes past it fail with ENOSPC) and stays mounted while any container uses
it; a tiny "holder" container (the busybox image, `sleep`, hardened the same way, mounting it
read-only) keeps it alive after the job exits, and the output is read with `get_archive` from the
holder and re-packed by agent/packing.py. The job stays an ordinary PID 1 container: when it
exits, the kernel kills every process it left behind, so nothing can write to /outputs while it is
being copied. The holder starts while the job container is created, and is removed in the
background once the output is packed; see bench/sandbox_overhead.py for what a job costs.
See docs/SANDBOX.md for the threat model.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import docker
import requests

from agent.errors import (
    GpuUnavailable,
    ImageNotAvailable,
    InvalidSandboxRequest,
    OutputTooLarge,
    SandboxError,
    UnsafeOutput,
)
from agent.packing import BLOCK, PackedOutput, entries_from_tar, pack, validate_path
from ascendnet.log import get_logger

log = get_logger("agent.sandbox")

MiB = 1 << 20
PAGE = 4096
INPUTS_DIR = "/inputs"
OUTPUTS_DIR = "/outputs"
JOB_HOSTNAME = "ascendnet-job"
#: Every container and volume the sandbox creates carries these labels.
LABEL_OWNER = "ascendnet.sandbox"  # value: the Sandbox's owner
LABEL_JOB = "ascendnet.job"  # value: the request's job_id
LABEL_ROLE = "ascendnet.role"  # "job" or "outputs-holder"
#: The docker log of a job is capped on disk at about 2 x LOG_MAX_SIZE.
LOG_MAX_SIZE = "512k"
HOLDER_COMMAND = ("sleep", "2147483647")
_SlotKey = tuple[int, int, int, int]  # outputs tmpfs bytes, inodes, uid, gid
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_USER = re.compile(r"^(\d+):(\d+)$")


class JobStatus(StrEnum):
    """How a job ended. Only SUCCEEDED has an output whose hash may be posted."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the command exited non-zero
    TIMED_OUT = "timed_out"  # killed at the wall-clock timeout
    OOM_KILLED = "oom_killed"  # the kernel killed a process at the memory limit
    OUTPUT_TOO_LARGE = "output_too_large"  # the packed output is over output_limit_bytes
    OUTPUT_REJECTED = "output_rejected"  # the output holds what the canonical tar refuses
    START_FAILED = "start_failed"  # the engine could not start the command


@dataclass(frozen=True)
class SandboxRequest:
    """One job, in plain terms (the watcher maps a JobSpec and the agent policy to this).

    `command` replaces the image's CMD (its ENTRYPOINT, if any, still applies); empty means the
    image's default. `inputs` maps a relative path under /inputs to a host file or to bytes.
    `memory_bytes` covers the processes *and* what they keep in /tmp and /outputs (tmpfs pages
    are charged to the job's memory cgroup); there is no swap.
    """

    image: str
    command: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    inputs: Mapping[str, Path | bytes] = field(default_factory=dict)
    cpus: float = 1.0
    memory_bytes: int = 512 * MiB
    pids_limit: int = 256
    gpus: int = 0
    #: Specific GPUs (index or UUID) for this job, so concurrent jobs do not share one; empty
    #: means "any `gpus` of them", which is only safe with one GPU job at a time.
    gpu_device_ids: Sequence[str] = ()
    timeout_seconds: float = 600.0
    output_limit_bytes: int = 64 * MiB
    output_max_entries: int = 10_000
    tmp_bytes: int = 64 * MiB
    user: str = "65534:65534"
    nofile: int = 1024
    job_id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "command", tuple(self.command))
        object.__setattr__(self, "gpu_device_ids", tuple(self.gpu_device_ids))
        if not self.image:
            raise InvalidSandboxRequest("image", "it is empty")
        if any(not isinstance(a, str) or "\x00" in a for a in self.command):
            raise InvalidSandboxRequest("command", "every argument must be a string without NUL bytes")
        for name, value in self.env.items():
            if not _ENV_NAME.match(name) or "\x00" in value:
                raise InvalidSandboxRequest(
                    "env", f"{name!r} is not a valid variable name or its value has NUL"
                )
        for path, source in self.inputs.items():
            try:
                validate_path(path)
            except UnsafeOutput as exc:
                raise InvalidSandboxRequest("inputs", f"{path!r}: {exc.reason}") from None
            if not isinstance(source, Path | bytes):
                raise InvalidSandboxRequest("inputs", f"{path!r} must map to a host Path or bytes")
        match = _USER.match(self.user)
        if match is None or int(match.group(1)) == 0 or int(match.group(2)) == 0:
            raise InvalidSandboxRequest("user", f"{self.user!r} must be numeric 'uid:gid', neither of them 0")
        checks = {
            "cpus": self.cpus > 0,
            "memory_bytes": self.memory_bytes >= 8 * MiB,
            "pids_limit": self.pids_limit >= 8,
            "gpus": self.gpus >= 0,
            "timeout_seconds": self.timeout_seconds > 0,
            "output_limit_bytes": self.output_limit_bytes > 0,
            "output_max_entries": self.output_max_entries > 0,
            "tmp_bytes": self.tmp_bytes > 0,
            "nofile": self.nofile > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise InvalidSandboxRequest(name, f"{getattr(self, name)!r} is out of range")
        if self.gpu_device_ids and len(self.gpu_device_ids) != self.gpus:
            raise InvalidSandboxRequest(
                "gpu_device_ids", f"names {len(self.gpu_device_ids)} GPUs for gpus={self.gpus}"
            )

    @property
    def uid(self) -> int:
        return int(self.user.split(":")[0])

    @property
    def gid(self) -> int:
        return int(self.user.split(":")[1])

    @property
    def outputs_tmpfs_bytes(self) -> int:
        """The kernel cap on /outputs: the limit rounded up to a page. A job that fills it packs to
        more than the limit (tar headers come on top), so hitting the cap is always reported."""
        return -(-self.output_limit_bytes // PAGE) * PAGE


@dataclass(frozen=True)
class SandboxResult:
    """The outcome of one job. `output` is the canonical tar (None when it timed out, was
    OOM-killed, or its output was refused or too large); `output.digest` is the resultHash."""

    status: JobStatus
    exit_code: int | None
    duration_seconds: float
    stdout_tail: str
    stderr_tail: str
    output: PackedOutput | None
    image_id: str
    container_name: str
    detail: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status is JobStatus.SUCCEEDED


def _slot_key(request: SandboxRequest) -> _SlotKey:
    return (request.outputs_tmpfs_bytes, request.output_max_entries + 1, request.uid, request.gid)


@dataclass(frozen=True)
class _Outcome:
    status: JobStatus
    exit_code: int | None
    duration: float
    output: PackedOutput | None = None
    detail: str = ""


@dataclass(frozen=True)
class _OutputsSlot:
    """A fresh tmpfs volume for one job's /outputs and the running holder that keeps it mounted."""

    key: _SlotKey
    volume: Any
    holder: Any


class Sandbox:
    """Runs jobs in hardened containers on a local dockerd. Thread-safe: one `run` per job.

    `helper_image` is the pinned busybox image (agent.images.ensure_busybox_image) used for the
    outputs holder. `owner` labels everything this sandbox creates, so `cleanup_leftovers` after a
    crash removes only this agent's leftovers. `work_dir` holds the staged inputs; it must be on
    the host that runs dockerd (they are bind-mounted).

    With `prewarm`, the outputs volume and holder of the next job are made in the background while
    a job runs, which takes a container start off each job's critical path (about 0.2 s, see
    bench/sandbox_overhead.py), at the price of one idle `sleep` container between jobs. It is off
    by default because that spare outlives a process killed without `close()` (a restart's
    `cleanup_leftovers` removes it). Call `close()`, or use the sandbox as a context manager.
    """

    def __init__(
        self,
        client: Any,
        *,
        helper_image: str,
        work_dir: Path | None = None,
        host_gpus: int = 0,
        owner: str = "agent",
        log_tail_bytes: int = 8192,
        prewarm: bool = False,
    ) -> None:
        self._client = client
        self.helper_image = helper_image
        self.work_dir = (
            work_dir if work_dir is not None else Path(tempfile.gettempdir()) / "ascendnet-sandbox"
        )
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.host_gpus = host_gpus
        self.owner = owner
        self.log_tail_bytes = log_tail_bytes
        self.prewarm = prewarm
        #: Staged inputs live in `work_dir/<stage_prefix><random>`; the prefix is unique per owner.
        self.stage_prefix = f"job-{hashlib.sha256(owner.encode()).hexdigest()[:12]}-"
        self._lock = threading.Lock()
        self._spare: _OutputsSlot | None = None
        self._refill: Future[None] | None = None
        self._closed = False
        # Background work: prewarming the next outputs slot, removing the used ones.
        self._background = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sandbox")
        atexit.register(self._close_at_exit)
        security = [str(s) for s in client.info().get("SecurityOptions") or []]
        if not any("seccomp" in s for s in security):
            # NOTE: docker's default seccomp profile is a second wall behind cap_drop; the sandbox
            # never disables it, but a dockerd built or run without seccomp cannot apply it.
            log.warning(
                "sandbox.no_seccomp", security_options=security, hint="use a dockerd with seccomp support"
            )

    def _close_at_exit(self) -> None:
        self.close()

    # --- public API ---

    def run(self, request: SandboxRequest) -> SandboxResult:
        """Run one job to completion (or its timeout) and remove everything it used."""
        if self._closed:
            raise SandboxError("the sandbox is closed; create a new one")
        if request.gpus > self.host_gpus:
            raise GpuUnavailable(request.gpus, self.host_gpus)
        image_id = self._resolve_image(request.image)
        name = f"ascendnet-job-{uuid.uuid4().hex[:16]}"
        labels = {LABEL_OWNER: self.owner, LABEL_JOB: request.job_id, LABEL_ROLE: "job"}
        key = _slot_key(request)
        stage = Path(tempfile.mkdtemp(prefix=self.stage_prefix, dir=self.work_dir))
        volume: Any = None
        holder: Any = None
        job: Any = None
        try:
            inputs_dir = self._stage_inputs(stage, request)
            spare = self._take_spare(key)
            starting: Future[Any] | None = None
            if spare is not None:
                volume, holder = spare.volume, spare.holder
            else:
                volume = self._create_volume(key)
                # The holder must run before the job starts; it starts while the job is created.
                starting = self._submit(self._start_holder, key, volume.name)
            try:
                config = self._job_config(name, image_id, inputs_dir, volume.name, request, labels)
                job = self._client.containers.create(**config)
            except docker.errors.APIError as exc:
                raise SandboxError(f"could not create the job container: {exc.explanation or exc}") from exc
            finally:
                if starting is not None:
                    holder = starting.result()
            try:
                result = self._execute(job, holder, request, image_id, name, lambda: self._start_refill(key))
            except requests.exceptions.RequestException as exc:
                raise SandboxError(f"lost contact with dockerd while the job ran: {exc}") from exc
        finally:
            self._remove(job)
            shutil.rmtree(stage, ignore_errors=True)
            # The used volume and holder go in the background: the result does not wait for them.
            self._submit(self._remove, holder, volume)
        log.info(
            "sandbox.finished",
            job_id=request.job_id,
            container=name,
            status=str(result.status),
            exit_code=result.exit_code,
            duration_s=round(result.duration_seconds, 3),
            output_sha256=result.output.hexdigest if result.output else None,
        )
        return result

    def close(self) -> None:
        """Finish the background removals and remove the spare outputs slot. Idempotent; also
        run at interpreter exit for a sandbox that was never closed."""
        with self._lock:
            self._closed = True
        self._background.shutdown(wait=True)
        with self._lock:
            spare, self._spare = self._spare, None
        if spare is not None:
            self._remove(spare.holder, spare.volume)
        atexit.unregister(self._close_at_exit)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cleanup_leftovers(self) -> int:
        """Remove the containers, volumes and staged inputs a crashed run of this owner left
        behind. Call it when the agent starts, never while jobs of this owner are running."""
        removed = 0
        label = {"label": f"{LABEL_OWNER}={self.owner}"}
        for container in self._client.containers.list(all=True, filters=label):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
                removed += 1
        for volume in self._client.volumes.list(filters=label):
            with contextlib.suppress(docker.errors.NotFound):
                volume.remove(force=True)
                removed += 1
        for stage in self.work_dir.glob(self.stage_prefix + "*"):
            shutil.rmtree(stage, ignore_errors=True)
            removed += 1
        return removed

    def reap_orphans(self, active_job_ids: Collection[str], *, min_age_seconds: float = 30.0) -> int:
        """Remove this owner's containers and volumes of jobs that are not running. Safe while
        jobs run: it spares `active_job_ids` and anything younger than `min_age_seconds` (a job
        being set up). Catches what a killed agent's in-flight Docker calls created after the
        restarted agent's `cleanup_leftovers` had already run."""
        removed = 0
        cutoff = time.time() - min_age_seconds
        label = {"label": f"{LABEL_OWNER}={self.owner}"}
        active = set(active_job_ids)
        for container in self._client.containers.list(all=True, filters=label):
            if container.labels.get(LABEL_JOB) in active or _created_at(container.attrs) > cutoff:
                continue
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                container.remove(force=True)
                removed += 1
        for volume in self._client.volumes.list(filters=label):
            if (volume.attrs.get("Labels") or {}).get(LABEL_JOB) in active:
                continue
            if _created_at(volume.attrs, key="CreatedAt") > cutoff:
                continue
            # A volume still mounted by a live container refuses removal: left for the next pass.
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                volume.remove(force=True)
                removed += 1
        return removed

    # --- steps ---

    def _resolve_image(self, ref: str) -> str:
        # NOTE: the container is created from the resolved ID, so a tag cannot move between the
        # policy check and the run. The sandbox never pulls.
        try:
            return str(self._client.images.get(ref).id)
        except docker.errors.ImageNotFound:
            raise ImageNotAvailable(ref) from None

    def _stage_inputs(self, stage: Path, request: SandboxRequest) -> Path:
        root = stage / "inputs"
        root.mkdir()
        for rel, source in request.inputs.items():
            target = root / rel
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(source, bytes):
                    target.write_bytes(source)
                    target.chmod(0o644)
                else:
                    _link_or_copy(source, target)
            except FileNotFoundError as exc:
                raise InvalidSandboxRequest("inputs", f"{rel!r}: {exc.filename} does not exist") from exc
            except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
                raise InvalidSandboxRequest("inputs", f"{rel!r} clashes with another input ({exc})") from exc
        # The job's uid must be able to read everything, whatever the agent's umask was.
        for directory in [root, *(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())]:
            directory.chmod(0o755)
        return root

    # --- the outputs slot: a fresh tmpfs volume per job, kept mounted by a holder container ---

    def _take_spare(self, key: _SlotKey) -> _OutputsSlot | None:
        with self._lock:
            pending = self._refill if self._spare is None else None
        if pending is not None:
            # A spare is being made right now: waiting for it beats starting another holder.
            with contextlib.suppress(Exception):
                pending.result()
        with self._lock:
            spare = self._spare if self._spare is not None and self._spare.key == key else None
            if spare is not None:
                self._spare = None
        if spare is not None and not self._holder_running(spare.holder):
            self._remove(spare.holder, spare.volume)
            return None
        return spare

    @staticmethod
    def _holder_running(holder: Any) -> bool:
        try:
            holder.reload()
        except docker.errors.NotFound:
            return False
        return bool(holder.attrs["State"].get("Running"))

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run `fn` on the background pool, or right here once the pool is shut down."""
        try:
            return self._background.submit(fn, *args)
        except RuntimeError:
            done: Future[Any] = Future()
            try:
                done.set_result(fn(*args))
            except BaseException as exc:  # handed to the caller through the future, as the pool does
                done.set_exception(exc)
            return done

    def _start_refill(self, key: _SlotKey) -> None:
        """Make the next job's outputs slot while this job runs (called once it has started)."""
        if not self.prewarm:
            return
        with self._lock:
            if self._closed or (self._refill is not None and not self._refill.done()):
                return
            try:
                self._refill = self._background.submit(self._do_refill, key)
            except RuntimeError:  # closing
                self._refill = None

    def _do_refill(self, key: _SlotKey) -> None:
        volume: Any = None
        try:
            volume = self._create_volume(key)
            holder = self._start_holder(key, volume.name)
        except SandboxError as exc:
            self._remove(volume)
            log.warning("sandbox.prewarm_failed", error=str(exc))
            return
        with self._lock:
            replaced, keep = self._spare, not self._closed
            if keep:
                self._spare = _OutputsSlot(key, volume, holder)
        if not keep:
            self._remove(holder, volume)
        elif replaced is not None:
            self._remove(replaced.holder, replaced.volume)

    def _create_volume(self, key: _SlotKey) -> Any:
        size, inodes, uid, gid = key
        options = f"size={size},nr_inodes={inodes},uid={uid},gid={gid},mode=0755,noexec,nosuid,nodev"
        try:
            return self._client.volumes.create(
                name=f"ascendnet-outputs-{uuid.uuid4().hex[:16]}",
                driver="local",
                driver_opts={"type": "tmpfs", "device": "tmpfs", "o": options},
                labels={LABEL_OWNER: self.owner, LABEL_ROLE: "outputs"},
            )
        except docker.errors.APIError as exc:
            raise SandboxError(f"could not create the outputs volume: {exc.explanation or exc}") from exc

    def _start_holder(self, key: _SlotKey, volume: str) -> Any:
        """Start the container that keeps `volume` mounted (it is named after the volume). On
        failure the holder is removed; the volume is the caller's to remove."""
        _, _, uid, gid = key
        holder: Any = None
        try:
            holder = self._client.containers.create(**self._holder_config(volume, f"{uid}:{gid}"))
            holder.start()
        except docker.errors.APIError as exc:
            self._remove(holder)
            raise SandboxError(f"could not start the outputs holder: {exc.explanation or exc}") from exc
        return holder

    def _remove(self, *targets: Any) -> None:
        """Remove containers and volumes (None entries are skipped), whatever state they are in."""
        for target in targets:
            if target is None:
                continue
            try:
                target.remove(force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                log.warning("sandbox.cleanup_failed", name=getattr(target, "name", "?"), error=str(exc))

    # --- container configuration ---

    def _hardening(self, user: str) -> dict[str, Any]:
        """The flags the job and the holder share (tests assert each of them on a running job)."""
        return {
            "user": user,
            "network_mode": "none",
            # NOTE: with networking disabled as well, dockerd skips libnetwork entirely (no
            # sandbox, no prestart hook): the kernel gives the container a fresh network
            # namespace holding only `lo`. Same isolation as "none", and 0.2 s faster to start.
            "network_disabled": True,
            "read_only": True,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "privileged": False,
            "ipc_mode": "private",
            "detach": True,
            "stdin_open": False,
            "tty": False,
        }

    def _holder_config(self, name: str, user: str) -> dict[str, Any]:
        return {
            **self._hardening(user),
            "image": self.helper_image,
            "command": list(HOLDER_COMMAND),
            "name": name,
            "pids_limit": 8,
            "mem_limit": 16 * MiB,
            "memswap_limit": 16 * MiB,
            "nano_cpus": 100_000_000,
            "mounts": [docker.types.Mount(OUTPUTS_DIR, name, type="volume", read_only=True, no_copy=True)],
            "labels": {LABEL_OWNER: self.owner, LABEL_ROLE: "outputs-holder"},
            "log_config": docker.types.LogConfig(type="none"),
        }

    def _job_config(
        self,
        name: str,
        image_id: str,
        inputs_dir: Path,
        volume: str,
        request: SandboxRequest,
        labels: dict[str, str],
    ) -> dict[str, Any]:
        owner = f"uid={request.uid},gid={request.gid}"
        config: dict[str, Any] = {
            **self._hardening(request.user),
            "image": image_id,
            "command": list(request.command) or None,
            "name": name,
            "hostname": JOB_HOSTNAME,
            "environment": dict(request.env),
            "labels": labels,
            "pids_limit": request.pids_limit,
            "mem_limit": request.memory_bytes,
            "memswap_limit": request.memory_bytes,  # equal to the memory limit: no swap
            "nano_cpus": int(request.cpus * 1e9),
            # NOTE: owned by the job's uid: dockerd copies the image's /tmp (mode and all) into the
            # tmpfs, so `mode=1777` alone leaves a root-owned 0755 /tmp on many images.
            "tmpfs": {"/tmp": f"rw,noexec,nosuid,nodev,size={request.tmp_bytes},{owner},mode=1777"},
            "shm_size": request.tmp_bytes,
            "mounts": [
                docker.types.Mount(INPUTS_DIR, str(inputs_dir), type="bind", read_only=True),
                docker.types.Mount(OUTPUTS_DIR, volume, type="volume", read_only=False, no_copy=True),
            ],
            # NOTE: no nproc ulimit. RLIMIT_NPROC counts every process of the uid on the whole
            # host, and every job runs as the same uid (so that `id` prints the same thing on
            # every provider), so a fork bomb in one job would stop the others from forking. The
            # per-container pids cgroup (pids_limit) is the limit that cannot leak across jobs.
            "ulimits": [
                docker.types.Ulimit(name="nofile", soft=request.nofile, hard=request.nofile),
                docker.types.Ulimit(name="core", soft=0, hard=0),
            ],
            "init": True,  # docker-init reaps zombies and forwards signals
            "oom_score_adj": 1000,  # under host-wide memory pressure, jobs die before the agent
            "log_config": docker.types.LogConfig(
                type="json-file", config={"max-size": LOG_MAX_SIZE, "max-file": "2"}
            ),
        }
        if request.gpus:
            if request.gpu_device_ids:
                gpu = docker.types.DeviceRequest(
                    device_ids=list(request.gpu_device_ids), capabilities=[["gpu"]]
                )
            else:
                gpu = docker.types.DeviceRequest(count=request.gpus, capabilities=[["gpu"]])
            config["device_requests"] = [gpu]
        return config

    def _execute(
        self,
        job: Any,
        holder: Any,
        request: SandboxRequest,
        image_id: str,
        name: str,
        on_started: Callable[[], None],
    ) -> SandboxResult:
        started = time.monotonic()
        try:
            job.start()
        except docker.errors.APIError as exc:
            outcome = _Outcome(
                JobStatus.START_FAILED, None, time.monotonic() - started, detail=str(exc.explanation or exc)
            )
        else:
            on_started()
            outcome = self._await(job, holder, request)
        stdout, stderr = self._tails(job)
        return SandboxResult(
            status=outcome.status,
            exit_code=outcome.exit_code,
            duration_seconds=outcome.duration,
            stdout_tail=stdout,
            stderr_tail=stderr,
            output=outcome.output,
            image_id=image_id,
            container_name=name,
            detail=outcome.detail,
        )

    def _await(self, job: Any, holder: Any, request: SandboxRequest) -> _Outcome:
        """Wait for the started job, kill it at the timeout, and classify how it ended."""
        started = time.monotonic()
        try:
            exit_code: int = job.wait(timeout=request.timeout_seconds)["StatusCode"]
            timed_out = False
        except requests.exceptions.RequestException:
            # NOTE: over the unix socket a read timeout surfaces as a ConnectionError; the clock
            # tells the job's timeout apart from a dockerd that went away.
            if time.monotonic() - started + 0.01 < request.timeout_seconds:
                raise
            timed_out = True
            with contextlib.suppress(docker.errors.APIError):  # it may have exited just now
                job.kill()
            exit_code = job.wait(timeout=60)["StatusCode"]
        duration = time.monotonic() - started
        if timed_out:
            detail = f"killed after {request.timeout_seconds:g} s"
            return _Outcome(JobStatus.TIMED_OUT, exit_code, duration, detail=detail)
        job.reload()
        if job.attrs["State"].get("OOMKilled"):
            detail = f"killed at the memory limit ({request.memory_bytes} bytes)"
            return _Outcome(JobStatus.OOM_KILLED, exit_code, duration, detail=detail)
        try:
            output = self._collect(holder, request)
        except OutputTooLarge as exc:
            return _Outcome(JobStatus.OUTPUT_TOO_LARGE, exit_code, duration, detail=str(exc))
        except UnsafeOutput as exc:
            status = JobStatus.FAILED if exit_code != 0 else JobStatus.OUTPUT_REJECTED
            return _Outcome(status, exit_code, duration, detail=str(exc))
        if exit_code != 0:
            return _Outcome(JobStatus.FAILED, exit_code, duration, output, f"exit code {exit_code}")
        return _Outcome(JobStatus.SUCCEEDED, exit_code, duration, output)

    def _collect(self, holder: Any, request: SandboxRequest) -> PackedOutput:
        # The kernel already caps the content; this caps what is read from dockerd, tar headers
        # included, so that a misbehaving engine cannot make the agent buffer without bound.
        max_tar = request.outputs_tmpfs_bytes + (request.output_max_entries + 2) * 6 * BLOCK + MiB
        chunks, _ = holder.get_archive(OUTPUTS_DIR)
        entries = entries_from_tar(chunks, root=OUTPUTS_DIR.strip("/"), max_bytes=max_tar)
        packed = pack(entries)
        if packed.size > request.output_limit_bytes:
            raise OutputTooLarge(size=packed.size, limit=request.output_limit_bytes)
        return packed

    def _tails(self, job: Any) -> tuple[str, str]:
        def tail(stdout: bool) -> str:
            try:
                raw: bytes = job.logs(stdout=stdout, stderr=not stdout, tail=1000)
            except docker.errors.APIError:
                return ""
            return raw[-self.log_tail_bytes :].decode("utf-8", "replace")

        return tail(True), tail(False)


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link an input into the stage when it is on the same filesystem and world-readable (large
    inputs cost nothing to stage; the mount is read-only); copy it otherwise."""
    if not source.is_file():
        raise FileNotFoundError(2, "not a regular file", str(source))
    with contextlib.suppress(OSError):
        if source.stat().st_mode & 0o004:
            os.link(source, target)
            return
    shutil.copyfile(source, target)
    target.chmod(0o644)


def _created_at(attrs: Mapping[str, Any], key: str = "Created") -> float:
    """Docker's RFC 3339 creation time (nanoseconds, `Z`) as a Unix timestamp; 0 if unknown."""
    raw = str(attrs.get(key) or "")
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$", raw)
    if match is None:
        return 0.0
    from datetime import datetime

    stamp = (
        match.group(1)
        + "."
        + (match.group(2) or "0")[:6].ljust(6, "0")
        + (match.group(3) or "Z").replace("Z", "+00:00")
    )
    return datetime.fromisoformat(stamp).timestamp()
