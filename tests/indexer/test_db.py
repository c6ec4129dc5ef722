"""Engines: SQLite in WAL with real transactions; read-only engines that cannot write."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from indexer import db
from indexer.settings import IndexerSettings


def test_sqlite_uses_wal_and_real_transactions(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'sub' / 'x.sqlite3'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        raise RuntimeError("rolled back")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
    engine.dispose()


def test_readonly_sqlite_cannot_write(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    ro = db.make_readonly_engine(url)
    with ro.connect() as conn:
        assert conn.exec_driver_sql("SELECT x FROM t").scalar() == 1
    with pytest.raises(sa.exc.OperationalError, match="readonly"), ro.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (2)")
    ro.dispose()
    engine.dispose()


def test_readonly_postgresql_cannot_write(pg_database: str) -> None:
    engine = db.make_engine(pg_database)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    ro = db.make_readonly_engine(pg_database)
    with pytest.raises(sa.exc.InternalError, match="read-only"), ro.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (2)")
    ro.dispose()
    engine.dispose()


def test_settings_default_to_a_sqlite_file_under_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASCENDNET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ASCENDNET_RPC_URLS", "http://a:8545, http://b:8545")
    monkeypatch.setenv("ASCENDNET_FINALITY", "confirmations")
    monkeypatch.setenv("ASCENDNET_CONFIRMATIONS", "6")
    s = IndexerSettings(_env_file=None)  # type: ignore[call-arg]
    assert s.database_url == f"sqlite:///{tmp_path / 'indexer.sqlite3'}"
    assert s.rpc_urls == ["http://a:8545", "http://b:8545"]
    assert (s.finality, s.confirmations) == ("confirmations", 6)


def test_settings_need_no_keystore_outside_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASCENDNET_ENV", "testnet")
    monkeypatch.setenv("ASCENDNET_DATABASE_URL", "postgresql+psycopg2://u:p@db/indexer")
    monkeypatch.delenv("ASCENDNET_RPC_URLS", raising=False)
    s = IndexerSettings(_env_file=None)  # type: ignore[call-arg]
    assert s.database_url.startswith("postgresql") and s.rpc_urls == [s.rpc_url]


def test_settings_refuse_a_one_block_finality_outside_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASCENDNET_ENV", "mainnet")
    monkeypatch.setenv("ASCENDNET_FINALITY", "confirmations")
    monkeypatch.setenv("ASCENDNET_CONFIRMATIONS", "1")
    # pydantic reports the validator's ConfigError as a ValidationError (both are ValueErrors).
    with pytest.raises(ValueError, match="ASCENDNET_CONFIRMATIONS=1 is unsafe on mainnet"):
        IndexerSettings(_env_file=None)  # type: ignore[call-arg]
