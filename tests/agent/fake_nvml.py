"""A fake NVML module for the monitor's unit tests: CI has no GPU. It has the functions and the
``NVMLError`` class of `pynvml` that `agent.monitor.NvmlReader` calls, with values the tests
choose, and can fail any query the way NVML does."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

MiB = 1 << 20


class NVMLError(Exception):
    _MESSAGES = {2: "Invalid Argument", 3: "Not Supported", 9: "Driver Not Loaded", 999: "Unknown Error"}

    def __init__(self, value: int) -> None:
        self.value = value
        super().__init__(value)

    def __str__(self) -> str:
        return self._MESSAGES.get(self.value, f"NVML error {self.value}")


@dataclass
class FakeGpu:
    name: str
    total_mb: int
    free_mb: int
    utilization: int = 0
    temperature: int = 40
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    #: Queries that fail with NVMLError(code): "temperature", "utilization", "uuid", "memory", ...
    failing: dict[str, int] = field(default_factory=dict)


class FakeNvml:
    NVML_TEMPERATURE_GPU = 0
    NVMLError = NVMLError

    def __init__(
        self,
        gpus: list[FakeGpu] | None = None,
        *,
        driver: str | bytes = "550.54.15",
        cuda: int = 12040,
        init_error: int | None = None,
    ) -> None:
        self.gpus = gpus or []
        self.driver = driver
        self.cuda = cuda
        self.init_error = init_error
        self.initialised = False
        self.shutdowns = 0

    def _gpu(self, handle: int, query: str) -> FakeGpu:
        assert self.initialised, "NVML queried before nvmlInit"
        gpu = self.gpus[handle]
        if query in gpu.failing:
            raise NVMLError(gpu.failing[query])
        return gpu

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1
        self.initialised = False

    def nvmlSystemGetDriverVersion(self) -> str | bytes:
        return self.driver

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return self.cuda

    def nvmlDeviceGetCount(self) -> int:
        assert self.initialised
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        self._gpu(index, "handle")
        return index

    def nvmlDeviceGetName(self, handle: int) -> str:
        return self._gpu(handle, "name").name

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return self._gpu(handle, "uuid").uuid

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        gpu = self._gpu(handle, "memory")
        return SimpleNamespace(
            total=gpu.total_mb * MiB, free=gpu.free_mb * MiB, used=(gpu.total_mb - gpu.free_mb) * MiB
        )

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        return SimpleNamespace(gpu=self._gpu(handle, "utilization").utilization, memory=0)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        return self._gpu(handle, "temperature").temperature


def two_gpus() -> FakeNvml:
    return FakeNvml(
        [
            FakeGpu("NVIDIA A100-SXM4-80GB", 81920, 80000, utilization=7, temperature=34, uuid="GPU-aaaa"),
            FakeGpu("NVIDIA A100-SXM4-80GB", 81920, 1024, utilization=98, temperature=71, uuid="GPU-bbbb"),
        ]
    )
