"""The capability document: built from the monitor, stable across readings of the same machine,
and published to the content store as canonical JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.capability import CapabilityDocument, GpuOffer, PricePolicy
from agent.monitor import DockerInfo, NvmlReader, ResourceMonitor, Resources
from ascendnet.storage import LocalContentStore, compute_cid
from tests.agent.fake_nvml import FakeNvml, two_gpus


def snapshot(tmp_path: Path, nvml: FakeNvml) -> Resources:
    return ResourceMonitor(
        tmp_path, nvml=NvmlReader(nvml), docker_probe=lambda: DockerInfo(reachable=True)
    ).snapshot()


def test_built_from_a_gpu_machine(tmp_path: Path) -> None:
    snap = snapshot(tmp_path, two_gpus())
    doc = CapabilityDocument.from_resources(
        snap, price=PricePolicy(gpu_hour=10**15), endpoint="https://gpu.example.org"
    )
    assert doc.schema_version == "ascendnet.capability/v1"
    assert doc.gpu_count == 2
    assert doc.gpus == (GpuOffer(model="NVIDIA A100-SXM4-80GB", vram_mb=81920),) * 2
    assert (doc.driver_version, doc.cuda_version) == ("550.54.15", "12.4")
    assert doc.cpus == snap.cpu.logical_cores
    assert doc.memory_mb == snap.memory.total_mb
    assert doc.price.gpu_hour == 10**15 and doc.price.asset == "native"
    assert doc.agent_version == snap.agent_version
    assert doc.endpoint == "https://gpu.example.org"


def test_a_cpu_only_machine_offers_no_gpus(tmp_path: Path) -> None:
    doc = CapabilityDocument.from_resources(snapshot(tmp_path, FakeNvml(init_error=9)))
    assert doc.gpu_count == 0 and doc.gpus == ()
    assert doc.driver_version is None and doc.cuda_version is None


def test_volatile_readings_do_not_change_the_document(tmp_path: Path) -> None:
    busy = two_gpus()
    busy.gpus[0].free_mb, busy.gpus[0].utilization, busy.gpus[0].temperature = 10, 100, 90
    first = CapabilityDocument.from_resources(snapshot(tmp_path, two_gpus()))
    second = CapabilityDocument.from_resources(snapshot(tmp_path, busy))
    assert first.canonical_json() == second.canonical_json()


def test_canonical_json_round_trips_and_publishes_under_its_cid(tmp_path: Path) -> None:
    doc = CapabilityDocument.from_resources(snapshot(tmp_path, two_gpus()))
    data = doc.canonical_json()
    assert data == json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode()
    assert CapabilityDocument.model_validate_json(data) == doc
    store = LocalContentStore(tmp_path / "content")
    cid = doc.publish(store)
    assert cid == str(compute_cid(data))
    assert store.get(cid) == data


@pytest.mark.parametrize(
    "changes",
    [
        {"gpu_count": 3},
        {"endpoint": "ftp://x"},
        {"price": {"asset": "ETH"}},
        {"cpus": 0},
        {"extra": 1},
    ],
)
def test_invalid_documents_are_refused(tmp_path: Path, changes: dict[str, object]) -> None:
    doc = json.loads(CapabilityDocument.from_resources(snapshot(tmp_path, two_gpus())).canonical_json())
    doc.update(changes)
    with pytest.raises(ValidationError):
        CapabilityDocument.model_validate_json(json.dumps(doc))
