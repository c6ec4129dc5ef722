"""The resource monitor: NVML readings through a fake NVML module (CI has no GPU), and real
readings of this machine (CPU-only here, with the reason logged)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psutil
import pytest
from structlog.testing import capture_logs

from agent.monitor import DockerInfo, NvmlReader, ResourceMonitor, probe_docker
from tests.agent.fake_nvml import FakeGpu, FakeNvml, two_gpus


def test_two_gpus_are_reported_with_their_readings() -> None:
    nvml = two_gpus()
    report = NvmlReader(nvml).read()
    assert report.available and report.reason is None
    assert report.count == 2
    assert (report.driver_version, report.cuda_version) == ("550.54.15", "12.4")
    first, second = report.gpus
    assert (first.index, first.name, first.uuid) == (0, "NVIDIA A100-SXM4-80GB", "GPU-aaaa")
    assert (first.memory_total_mb, first.memory_free_mb) == (81920, 80000)
    assert (first.utilization_percent, first.temperature_c) == (7, 34)
    assert (second.memory_free_mb, second.utilization_percent, second.temperature_c) == (1024, 98, 71)
    assert first.problems == second.problems == ()
    assert nvml.shutdowns == 1  # NVML is released after each reading


def test_nvml_init_failure_means_cpu_only_and_says_why() -> None:
    nvml = FakeNvml(init_error=9)  # NVML_ERROR_DRIVER_NOT_LOADED
    with capture_logs() as logs:
        report = NvmlReader(nvml).read()
    assert not report.available
    assert report.gpus == ()
    assert report.reason is not None and "Driver Not Loaded" in report.reason
    assert {"event": "monitor.cpu_only", "log_level": "warning", "reason": report.reason} in logs


def test_driver_without_gpus_means_cpu_only() -> None:
    nvml = FakeNvml([], driver=b"535.104.05", cuda=12020)  # older nvidia-ml-py returns bytes
    with capture_logs() as logs:
        report = NvmlReader(nvml).read()
    assert not report.available
    assert report.reason == "the NVIDIA driver (535.104.05) reports no GPUs"
    assert (report.driver_version, report.cuda_version) == ("535.104.05", "12.2")
    assert [e["event"] for e in logs] == ["monitor.cpu_only"]
    assert nvml.shutdowns == 1


def test_a_failing_temperature_sensor_does_not_hide_the_gpu() -> None:
    nvml = two_gpus()
    nvml.gpus[1].failing = {"temperature": 3}  # NVML_ERROR_NOT_SUPPORTED
    with capture_logs() as logs:
        report = NvmlReader(nvml).read()
    assert report.available and report.count == 2
    assert report.gpus[0].temperature_c == 34
    assert report.gpus[1].temperature_c is None
    assert report.gpus[1].problems == ("temperature: Not Supported",)
    assert report.gpus[1].memory_total_mb == 81920  # the rest of its readings are there
    failed = [e for e in logs if e["event"] == "monitor.gpu_query_failed"]
    assert failed == [
        {"event": "monitor.gpu_query_failed", "log_level": "warning", "index": 1, "query": "temperature",
         "error": "Not Supported"}
    ]  # fmt: skip


def test_a_gpu_whose_memory_cannot_be_read_is_not_offered() -> None:
    nvml = FakeNvml([FakeGpu("A", 1000, 900, failing={"memory": 999}), FakeGpu("B", 2000, 1500)])
    report = NvmlReader(nvml).read()
    assert [g.name for g in report.gpus] == ["B"]
    assert report.gpus[0].index == 1


def test_no_gpu_readable_at_all_means_cpu_only() -> None:
    nvml = FakeNvml([FakeGpu("A", 1000, 900, failing={"name": 999})])
    report = NvmlReader(nvml).read()
    assert not report.available
    assert report.reason == "none of the 1 GPU(s) NVML lists could be queried"


def test_missing_nvidia_ml_py_means_cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    def no_module(name: str) -> Any:
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(importlib, "import_module", no_module)
    report = NvmlReader().read()
    assert not report.available
    assert report.reason is not None and report.reason.startswith("nvidia-ml-py is not installed")


# ---------------------------------------------------------------------------- this machine


def test_this_machine_through_the_real_nvml() -> None:
    """With the real pynvml: a machine without an NVIDIA device (CI, this VM) is CPU-only with a
    logged reason; one with a device reports at least one GPU with VRAM."""
    with capture_logs() as logs:
        report = NvmlReader().read()
    if Path("/dev/nvidiactl").exists():
        assert report.available, report.reason
        assert report.count >= 1 and all(g.memory_total_mb > 0 for g in report.gpus)
    else:
        assert not report.available
        assert report.reason and "NVML is not available" in report.reason
        assert any(e["event"] == "monitor.cpu_only" and e["reason"] == report.reason for e in logs)


def test_snapshot_reports_this_host(tmp_path: Path) -> None:
    docker = DockerInfo(reachable=False, reason="not asked")
    monitor = ResourceMonitor(tmp_path / "data-not-created-yet", nvml=NvmlReader(FakeNvml(init_error=9)),
                              docker_probe=lambda: docker)  # fmt: skip
    snap = monitor.snapshot()
    assert snap.cpu_only and snap.gpu.reason
    assert snap.cpu.logical_cores == os.cpu_count()
    assert snap.cpu.load_1m >= 0
    assert 0 < snap.memory.available_mb <= snap.memory.total_mb == psutil.virtual_memory().total // (1 << 20)
    assert snap.disk.path == str(tmp_path)  # the nearest existing directory of the data dir
    assert 0 < snap.disk.free_mb <= snap.disk.total_mb
    assert snap.docker is docker
    assert snap.model_dump()["gpu"]["available"] is False


def test_snapshot_with_gpus_is_not_cpu_only(tmp_path: Path) -> None:
    snap = ResourceMonitor(
        tmp_path, nvml=NvmlReader(two_gpus()), docker_probe=lambda: DockerInfo(reachable=True)
    ).snapshot()
    assert not snap.cpu_only
    assert snap.gpu.count == 2


def test_unreachable_docker_is_reported_quickly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such-docker.sock")
    with capture_logs() as logs:
        info = probe_docker(timeout=1)
    assert not info.reachable
    assert info.reason
    assert any(e["event"] == "monitor.docker_unreachable" for e in logs)


def test_reachable_docker_reports_its_version(docker_client: Any) -> None:
    info = probe_docker()
    assert info.reachable and info.reason is None
    assert info.version == docker_client.version()["Version"]
