from __future__ import annotations

from pathlib import Path

import pytest

from emily.config import load_settings
from emily.errors import ConfigError


def test_env_nested_and_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMILY_DATABASE__HNSW_M", "24")
    monkeypatch.setenv("EMILY_ENVIRONMENT", "production")
    settings = load_settings()
    assert settings.database.hnsw_m == 24
    assert settings.environment == "production"


def test_file_variant_reads_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "dsn"
    secret.write_text("postgresql://u:p@db/x\n")
    monkeypatch.setenv("EMILY_DATABASE__DSN_FILE", str(secret))
    settings = load_settings()
    assert settings.database.dsn is not None
    assert settings.database.dsn.get_secret_value() == "postgresql://u:p@db/x"
    assert "u:p" not in repr(settings)


def test_plain_variable_beats_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "dsn"
    secret.write_text("from-file")
    monkeypatch.setenv("EMILY_DATABASE__DSN_FILE", str(secret))
    monkeypatch.setenv("EMILY_DATABASE__DSN", "from-env")
    dsn = load_settings().database.dsn
    assert dsn is not None and dsn.get_secret_value() == "from-env"


def test_missing_secret_file_is_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMILY_REDIS__URL_FILE", "/nonexistent/secret")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.field == "EMILY_REDIS__URL_FILE"


def test_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = tmp_path / "emily.toml"
    toml.write_text('log_level = "debug"\n[database]\nef_search = 123\n')
    monkeypatch.setenv("EMILY_CONFIG", str(toml))
    settings = load_settings()
    assert settings.log_level == "debug"
    assert settings.database.ef_search == 123
    monkeypatch.setenv("EMILY_DATABASE__EF_SEARCH", "7")
    assert load_settings().database.ef_search == 7


def test_missing_toml_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMILY_CONFIG", "/nonexistent/emily.toml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()


def test_invalid_value_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMILY_DATABASE__EMBEDDING_STORAGE", "float8")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.field == "EMILY_DATABASE__EMBEDDING_STORAGE"


def test_config_error_never_prints_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "EMILY_INFERENCE__BACKENDS",
        '[{"name":"a","api_key":"S3CRET-KEY"},{"name":"a","api_key":"S3CRET-KEY"}]',
    )
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "EMILY_INFERENCE__BACKENDS" in str(caught.value)
    assert "unique" in str(caught.value)
    assert "S3CRET" not in str(caught.value)
    assert caught.value.__cause__ is None  # the pydantic error (which quotes input) is dropped


def test_config_error_quotes_short_plain_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMILY_DATABASE__HNSW_M", "many")
    with pytest.raises(ConfigError, match="got 'many'"):
        load_settings()
    monkeypatch.delenv("EMILY_DATABASE__HNSW_M")
    monkeypatch.setenv("EMILY_AGENTS__API_TOKEN", "x" * 5)
    monkeypatch.setenv("EMILY_DATABASE__POOL_MAX_SIZE", "0")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "POOL_MAX_SIZE" in str(caught.value)
