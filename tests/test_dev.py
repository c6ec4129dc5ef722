"""`ascendnet dev`'s children, without starting them (tests/e2e runs the whole stack)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ascendnet.dev import _services
from ascendnet.storage import LocalContentStore, StorageConfig, open_store
from indexer.settings import IndexerSettings


def test_the_indexer_reads_prompt_metadata_from_the_store_the_demo_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ascendnet demo` (and `prompt mint --data-dir`) store metadata documents in the dev data
    dir's local content store; the indexer child must resolve them from that very directory,
    whatever the caller's environment says about storage."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASCENDNET_STORAGE__BACKEND", "kubo")  # the user's, not dev's
    data_dir = Path("dev-data")  # relative, as `ascendnet dev` takes it by default
    (indexer,) = [
        child
        for child in _services(
            rpc_url="http://127.0.0.1:1",
            manifest_path=data_dir / "deployments" / "31337.json",
            data_dir=data_dir,
            api_port=1,
            with_agent=False,
        )
        if child.name == "indexer"
    ]
    for name in [n for n in os.environ if n.startswith("ASCENDNET_")]:
        monkeypatch.delenv(name)
    for name, value in indexer.env.items():
        if name.startswith("ASCENDNET_"):
            monkeypatch.setenv(name, value)
    monkeypatch.chdir("/")  # the child's paths must not depend on its working directory

    settings = IndexerSettings(_env_file=None)
    assert settings.metadata_resolve
    with settings.metadata_store() as store, open_store(StorageConfig(), tmp_path / data_dir) as demo:
        assert isinstance(store, LocalContentStore) and isinstance(demo, LocalContentStore)
        cid = demo.put(b'{"written": "by the demo"}')
        assert store.root == demo.root and store.get(cid) == b'{"written": "by the demo"}'
