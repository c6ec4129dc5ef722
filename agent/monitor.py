"""The resource monitor: what this machine can offer to jobs, read fresh on each `snapshot()`.

GPUs come from NVML (nvidia-ml-py, imported as ``pynvml``), behind `NvmlReader`, which takes the
NVML module as a parameter so that tests can hand it a fake one. CPU, memory and disk come from
psutil; Docker's reachability from a ping with a short timeout. Without NVML, a driver, or any GPU
the report says CPU-only and why, and the reason is logged.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from pydantic import BaseModel, ConfigDict

from ascendnet import __version__
from ascendnet.log import get_logger

log = get_logger("agent.monitor")

MiB = 1 << 20
#: How long `snapshot()` waits for dockerd before reporting it unreachable.
DOCKER_TIMEOUT_SECONDS = 2.0


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GpuInfo(_Frozen):
    """One GPU as NVML reports it. Optional readings are None when NVML could not give them
    (`problems` then says which query failed and why)."""

    index: int
    name: str
    uuid: str | None = None
    memory_total_mb: int
    memory_free_mb: int
    utilization_percent: int | None = None
    temperature_c: int | None = None
    problems: tuple[str, ...] = ()


class GpuReport(_Frozen):
    """The GPUs, or why there are none (`reason`)."""

    available: bool
    reason: str | None = None
    driver_version: str | None = None
    cuda_version: str | None = None
    gpus: tuple[GpuInfo, ...] = ()

    @property
    def count(self) -> int:
        return len(self.gpus)


class CpuInfo(_Frozen):
    model: str | None
    logical_cores: int
    physical_cores: int | None
    load_1m: float
    load_5m: float
    load_15m: float


class MemoryInfo(_Frozen):
    total_mb: int
    available_mb: int


class DiskInfo(_Frozen):
    path: str
    total_mb: int
    free_mb: int


class DockerInfo(_Frozen):
    reachable: bool
    version: str | None = None
    reason: str | None = None


class Resources(_Frozen):
    """One reading of everything the monitor watches."""

    hostname: str
    agent_version: str
    gpu: GpuReport
    cpu: CpuInfo
    memory: MemoryInfo
    disk: DiskInfo
    docker: DockerInfo

    @property
    def cpu_only(self) -> bool:
        return not self.gpu.available


# ---------------------------------------------------------------------------- NVML


def _text(value: Any) -> str:
    """NVML strings: bytes in older nvidia-ml-py releases, str in newer ones."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _cuda_version(value: int) -> str:
    """NVML's CUDA driver version, e.g. 12040 -> "12.4"."""
    return f"{value // 1000}.{value % 1000 // 10}"


class NvmlReader:
    """Reads GPUs through an NVML module: `pynvml` by default, any object with the same
    functions (and an ``NVMLError`` exception class) in tests."""

    def __init__(self, module: Any = None) -> None:
        self._module = module

    def _load(self) -> Any:
        if self._module is not None:
            return self._module
        return importlib.import_module("pynvml")

    def read(self) -> GpuReport:
        try:
            nvml = self._load()
        except ImportError as exc:
            return _cpu_only(f"nvidia-ml-py is not installed ({exc})")
        nvml_error: type[BaseException] = getattr(nvml, "NVMLError", Exception)
        try:
            nvml.nvmlInit()
        except nvml_error as exc:
            return _cpu_only(
                f"NVML is not available: {_text(exc)} (no NVIDIA driver, or it is not visible here)"
            )
        try:
            driver = self._optional(nvml, nvml_error, "driver version", nvml.nvmlSystemGetDriverVersion)
            cuda = self._optional(nvml, nvml_error, "CUDA version", nvml.nvmlSystemGetCudaDriverVersion)
            driver_version = _text(driver) if driver is not None else None
            cuda_version = _cuda_version(int(cuda)) if cuda is not None else None
            count = int(nvml.nvmlDeviceGetCount())
            if count == 0:
                return _cpu_only(
                    f"the NVIDIA driver ({driver_version or 'unknown version'}) reports no GPUs",
                    driver_version,
                    cuda_version,
                )
            gpus = tuple(g for g in (self._gpu(nvml, nvml_error, i) for i in range(count)) if g is not None)
        except nvml_error as exc:
            return _cpu_only(f"NVML failed while listing GPUs: {_text(exc)}")
        finally:
            with contextlib.suppress(nvml_error):
                nvml.nvmlShutdown()
        if not gpus:
            return _cpu_only(
                f"none of the {count} GPU(s) NVML lists could be queried", driver_version, cuda_version
            )
        log.info(
            "monitor.gpus",
            count=len(gpus),
            models=[g.name for g in gpus],
            driver=driver_version,
            cuda=cuda_version,
        )
        return GpuReport(available=True, driver_version=driver_version, cuda_version=cuda_version, gpus=gpus)

    @staticmethod
    def _optional(nvml: Any, nvml_error: type[BaseException], what: str, query: Callable[[], Any]) -> Any:
        try:
            return query()
        except nvml_error as exc:
            log.warning("monitor.nvml_query_failed", query=what, error=_text(exc))
            return None

    def _gpu(self, nvml: Any, nvml_error: type[BaseException], index: int) -> GpuInfo | None:
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            name = _text(nvml.nvmlDeviceGetName(handle))
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        except nvml_error as exc:
            # Without a name and VRAM the GPU cannot be offered; the others still can.
            log.warning("monitor.gpu_unreadable", index=index, error=_text(exc))
            return None
        problems: list[str] = []

        def optional(what: str, query: Callable[[], Any]) -> Any:
            try:
                return query()
            except nvml_error as exc:
                problems.append(f"{what}: {_text(exc)}")
                log.warning("monitor.gpu_query_failed", index=index, query=what, error=_text(exc))
                return None

        uuid = optional("uuid", lambda: nvml.nvmlDeviceGetUUID(handle))
        rates = optional("utilization", lambda: nvml.nvmlDeviceGetUtilizationRates(handle))
        temperature = optional(
            "temperature", lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
        )
        return GpuInfo(
            index=index,
            name=name,
            uuid=_text(uuid) if uuid is not None else None,
            memory_total_mb=int(memory.total) // MiB,
            memory_free_mb=int(memory.free) // MiB,
            utilization_percent=int(rates.gpu) if rates is not None else None,
            temperature_c=int(temperature) if temperature is not None else None,
            problems=tuple(problems),
        )


def _cpu_only(reason: str, driver: str | None = None, cuda: str | None = None) -> GpuReport:
    log.warning("monitor.cpu_only", reason=reason)
    return GpuReport(available=False, reason=reason, driver_version=driver, cuda_version=cuda)


# ---------------------------------------------------------------------------- host and Docker


def probe_docker(timeout: float = DOCKER_TIMEOUT_SECONDS) -> DockerInfo:
    """Whether dockerd answers a ping within `timeout` seconds (from DOCKER_HOST or the default
    socket), and its version."""
    import docker

    try:
        client = docker.from_env(timeout=timeout)
        try:
            client.ping()
            version = client.version().get("Version")
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable", with its reason
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        log.warning("monitor.docker_unreachable", reason=reason)
        return DockerInfo(reachable=False, reason=reason)
    return DockerInfo(reachable=True, version=str(version) if version else None)


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return None


def _existing(path: Path) -> Path:
    """`path`, or its nearest existing ancestor (the data dir may not exist yet)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


class ResourceMonitor:
    """Takes `Resources` snapshots. `data_dir` is the disk that matters (inputs, outputs, the
    content store); `nvml` and `docker_probe` can be replaced in tests."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        nvml: NvmlReader | None = None,
        docker_probe: Callable[[], DockerInfo] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.nvml = nvml or NvmlReader()
        self.docker_probe = docker_probe or probe_docker

    def snapshot(self) -> Resources:
        load = os.getloadavg()
        memory = psutil.virtual_memory()
        disk_path = _existing(self.data_dir)
        disk = psutil.disk_usage(str(disk_path))
        return Resources(
            hostname=socket.gethostname(),
            agent_version=__version__,
            gpu=self.nvml.read(),
            cpu=CpuInfo(
                model=_cpu_model(),
                logical_cores=psutil.cpu_count(logical=True) or os.cpu_count() or 1,
                physical_cores=psutil.cpu_count(logical=False),
                load_1m=round(load[0], 2),
                load_5m=round(load[1], 2),
                load_15m=round(load[2], 2),
            ),
            memory=MemoryInfo(total_mb=memory.total // MiB, available_mb=memory.available // MiB),
            disk=DiskInfo(path=str(disk_path), total_mb=disk.total // MiB, free_mb=disk.free // MiB),
            docker=self.docker_probe(),
        )


__all__ = [
    "CpuInfo",
    "DiskInfo",
    "DockerInfo",
    "GpuInfo",
    "GpuReport",
    "MemoryInfo",
    "NvmlReader",
    "ResourceMonitor",
    "Resources",
    "probe_docker",
]
