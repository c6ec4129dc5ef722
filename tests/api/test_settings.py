"""ApiSettings: local defaults work; unsafe values are refused outside local."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.settings import ApiSettings


def _settings(**env: str) -> ApiSettings:
    return ApiSettings(_env_file=None, **env)  # type: ignore[arg-type]


def test_local_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASCENDNET_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ASCENDNET_DATABASE_URL", raising=False)
    s = ApiSettings(_env_file=None)  # type: ignore[call-arg]
    assert s.database_url == f"sqlite:///{tmp_path / 'indexer.sqlite3'}"
    assert (s.api_host, s.api_port, s.api_default_limit, s.api_max_limit) == ("127.0.0.1", 8000, 50, 500)
    assert s.api_rate_limit > 0 and s.api_cors_origins == []


def test_lists_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASCENDNET_API_CORS_ORIGINS", "https://app.example.org, http://localhost:5173")
    monkeypatch.setenv("ASCENDNET_API_TRUSTED_PROXIES", '["10.0.0.0/8"]')
    s = ApiSettings(_env_file=None)  # type: ignore[call-arg]
    assert s.api_cors_origins == ["https://app.example.org", "http://localhost:5173"]
    assert s.api_trusted_proxies == ["10.0.0.0/8"]


def test_needs_no_keystore_outside_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASCENDNET_ENV", "mainnet")
    s = ApiSettings(_env_file=None, api_cors_origins=["https://app.example.org"])  # type: ignore[call-arg]
    assert s.env == "mainnet" and s.keystore is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"api_cors_origins": ["*"]}, "ASCENDNET_API_CORS_ORIGINS='*' is unsafe on mainnet"),
        ({"api_rate_limit": 0}, "ASCENDNET_API_RATE_LIMIT=0 turns rate limiting off"),
        ({"api_trusted_proxies": ["*"]}, "ASCENDNET_API_TRUSTED_PROXIES='*' is unsafe"),
    ],
)
def test_refuses_unsafe_values_outside_local(
    monkeypatch: pytest.MonkeyPatch, values: dict[str, object], message: str
) -> None:
    monkeypatch.setenv("ASCENDNET_ENV", "mainnet")
    with pytest.raises(ValueError, match=message.replace("*", r"\*")):
        ApiSettings(_env_file=None, **values)  # type: ignore[arg-type]
    monkeypatch.setenv("ASCENDNET_ENV", "local")
    ApiSettings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"api_cors_origins": ["app.example.org"]}, "is not an origin"),
        ({"api_trusted_proxies": ["proxy.local"]}, "not an IP address or network"),
        ({"api_default_limit": 100, "api_max_limit": 50}, "ASCENDNET_API_DEFAULT_LIMIT"),
        ({"api_max_limit": 1000}, "less than or equal to 500"),
    ],
)
def test_refuses_malformed_values_everywhere(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ApiSettings(_env_file=None, **values)  # type: ignore[arg-type]


def test_reads_run_on_the_event_loop_on_a_local_database_in_threads_on_a_remote_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from api.settings import DEFAULT_PG_THREADS

    monkeypatch.delenv("ASCENDNET_API_THREADS", raising=False)
    pg = "postgresql+psycopg2://api@db/ascendnet"
    assert _settings(env="local", database_url="sqlite:///indexer.sqlite3").api_threads == 0
    assert _settings(env="local", database_url=pg).api_threads == DEFAULT_PG_THREADS
    for local in ("api@127.0.0.1:5432", "api@localhost", "api@[::1]", "api@"):
        assert _settings(env="local", database_url=f"postgresql+psycopg2://{local}/x").api_threads == 0, local
    assert (
        _settings(env="local", database_url="postgresql+psycopg2://api@/x?host=/run/postgresql").api_threads
        == 0
    )
    monkeypatch.setenv("ASCENDNET_API_THREADS", "0")
    assert _settings(env="local", database_url=pg).api_threads == 0
