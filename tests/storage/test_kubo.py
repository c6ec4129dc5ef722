"""KuboContentStore against a fake Kubo RPC server (tests/storage/fake_kubo.py): the shared
contract, plus what only a remote node can get wrong (version checks, lying or unreachable
nodes, other import settings). No Kubo binary can be installed offline, so these are unit tests
of our adapter; the CIDs it must agree with are pinned by Kubo's own vectors in test_unixfs.py."""

from __future__ import annotations

from collections.abc import Iterator

import ipfshttpclient
import pytest

from ascendnet.storage import ContentMismatch, ContentNotFound, ImportOptions, StoreUnavailable
from ascendnet.storage.cid import Cid
from ascendnet.storage.kubo import ImportMismatch, KuboContentStore
from tests.conftest import free_port
from tests.storage.contract import HELLO, HELLO_V0, ContentStoreContract, payload
from tests.storage.fake_kubo import FakeKubo

# ipfshttpclient passes `strict=` to urllib3; kubo.py silences that at import, pytest resets filters.
pytestmark = pytest.mark.filterwarnings("ignore:The 'strict' parameter is no longer needed:FutureWarning")


@pytest.fixture()
def kubo() -> Iterator[FakeKubo]:
    node = FakeKubo()
    yield node
    node.stop()


@pytest.fixture()
def store(kubo: FakeKubo) -> Iterator[KuboContentStore]:
    with KuboContentStore(kubo.api, timeout=5) as s:
        yield s


@pytest.fixture()
def store_v1(kubo: FakeKubo) -> Iterator[KuboContentStore]:
    with KuboContentStore(kubo.api, options=ImportOptions(cid_version=1), timeout=5) as s:
        yield s


class TestKuboContentStore(ContentStoreContract):
    pass


def test_works_with_kubo_versions_that_ipfshttpclient_connect_refuses(kubo: FakeKubo) -> None:
    with pytest.raises(ipfshttpclient.exceptions.VersionMismatch):
        ipfshttpclient.connect(kubo.api)  # the library's own check: refuses >= 0.8.0
    store = KuboContentStore(kubo.api)
    assert store.version() == "0.32.1"
    assert store.put(HELLO) == HELLO_V0
    store.close()


def test_add_sends_the_import_flags(kubo: FakeKubo, store_v1: KuboContentStore) -> None:
    store_v1.put(b"x")
    path, params = next(r for r in kubo.requests if r[0] == "/api/v0/add")
    assert params["cid-version"] == "1"
    assert params["raw-leaves"] == "true"
    assert params["chunker"] == "size-262144"
    assert params["pin"] == "true"


def test_a_node_with_other_import_settings_is_refused(kubo: FakeKubo, store: KuboContentStore) -> None:
    kubo.add_answer = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    with pytest.raises(ImportMismatch) as info:
        store.put(HELLO)
    assert info.value.local_cid == HELLO_V0
    assert info.value.node_cid == kubo.add_answer
    assert "--cid-version=0" in str(info.value)


def test_a_lying_node_is_caught_block_by_block(kubo: FakeKubo, store: KuboContentStore) -> None:
    data = payload(600_000)
    cid = store.put(data)
    # Tamper with one leaf on the node: the root still lists it, so only the leaf check fails.
    leaf = next(k for k, b in kubo.blocks.items() if len(b) > 200_000)
    kubo.blocks[leaf] = kubo.blocks[leaf][:-1] + b"!"
    with pytest.raises(ContentMismatch) as info:
        store.get(cid)
    assert info.value.kind == "cid"
    assert info.value.cid == cid
    assert Cid.parse(info.value.expected).to_v1() == Cid.parse(leaf)


def test_has_asks_the_node_offline(kubo: FakeKubo, store: KuboContentStore) -> None:
    store.put(HELLO)
    assert store.has(HELLO_V0)
    path, params = kubo.requests[-1]
    assert path == "/api/v0/block/stat"
    assert params.get("offline") == "true"


def test_content_the_node_cannot_find_in_time_is_not_found(kubo: FakeKubo) -> None:
    kubo.missing_block_delay = 2.0
    with KuboContentStore(kubo.api, timeout=0.3) as store, pytest.raises(ContentNotFound) as info:
        store.get(HELLO_V0)
    assert "within 0.3 s" in str(info.value)


def test_unreachable_node_is_reported_with_a_hint() -> None:
    store = KuboContentStore(f"/ip4/127.0.0.1/tcp/{free_port()}/http", timeout=2)
    with pytest.raises(StoreUnavailable) as info:
        store.put(HELLO)
    assert "ipfs daemon" in str(info.value)
    with pytest.raises(StoreUnavailable):
        store.version()
    with pytest.raises(StoreUnavailable):
        store.get(HELLO_V0)


def test_bad_api_address_is_reported() -> None:
    with pytest.raises(StoreUnavailable, match="multiaddr"):
        KuboContentStore("http://localhost:5001")
