"""Settings: LIENWATCH_* variables over an optional TOML file, with readable errors."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from lienwatch.runtime import JsonFormatter
from lienwatch.settings import (
    RESERVED_PREFIXES,
    Settings,
    SettingsError,
    load_settings,
    unknown_variables,
)


def test_defaults_match_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LIENWATCH_CONFIG", "LIENWATCH_DATABASE_URL", "LIENWATCH_JT808_LISTEN"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.data_dir == Path("./lienwatch-data")
    assert settings.database_url is None
    assert settings.jt808_address == ("0.0.0.0", 6808)
    assert settings.api_address == ("127.0.0.1", 8000)
    assert settings.auto_register is False


def test_the_environment_wins_over_the_toml_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "lienwatch.toml"
    config.write_text('jt808_listen = "127.0.0.1:7000"\nauto_register = true\ndata_dir = "/x"\n')
    monkeypatch.setenv("LIENWATCH_CONFIG", str(config))
    monkeypatch.setenv("LIENWATCH_DATA_DIR", "/from-env")
    settings = load_settings()
    assert settings.jt808_address == ("127.0.0.1", 7000)
    assert settings.auto_register is True
    assert settings.data_dir == Path("/from-env")


def test_a_broken_toml_file_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("jt808_listen = \n")
    monkeypatch.setenv("LIENWATCH_CONFIG", str(config))
    with pytest.raises(SettingsError, match=r"bad\.toml"):
        load_settings()


def test_a_bad_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIENWATCH_CONFIG", raising=False)
    monkeypatch.setenv("LIENWATCH_JT808_LISTEN", "127.0.0.1:99999")
    with pytest.raises(SettingsError, match="jt808_listen"):
        load_settings()


def test_json_logs_are_one_object_per_line() -> None:
    record = logging.LogRecord(
        "lienwatch.gateway", logging.WARNING, "f", 1, "paused %d", (3,), None
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "warning"
    assert entry["logger"] == "lienwatch.gateway"
    assert entry["message"] == "paused 3"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No LIENWATCH_* settings from the caller's environment (reserved test variables stay)."""
    for name in list(os.environ):
        upper = name.upper()
        if upper.startswith("LIENWATCH_") and not upper.startswith(RESERVED_PREFIXES):
            monkeypatch.delenv(name)
    return monkeypatch


def test_an_unknown_variable_is_refused_with_the_closest_name(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("LIENWATCH_DATA_DRI", "/x")
    with pytest.raises(
        SettingsError, match=r"LIENWATCH_DATA_DRI \(did you mean LIENWATCH_DATA_DIR\?\)"
    ):
        load_settings()


def test_an_unknown_variable_far_from_every_name_gets_no_suggestion(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("LIENWATCH_FLUX_CAPACITOR", "1")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == "unknown environment variable: LIENWATCH_FLUX_CAPACITOR"


def test_every_unknown_variable_is_named_and_a_bare_settings_refuses_too(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("LIENWATCH_AUTOREGISTER", "true")
    clean_env.setenv("LIENWATCH_JT808_HANDSHAKE_TIMEOUT", "5")
    with pytest.raises(SettingsError) as caught:
        Settings()
    message = str(caught.value)
    assert "LIENWATCH_AUTOREGISTER (did you mean LIENWATCH_AUTO_REGISTER?)" in message
    assert "(did you mean LIENWATCH_JT808_HANDSHAKE_TIMEOUT_S?)" in message


def test_reserved_prefixes_and_the_config_variable_are_not_settings(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "empty.toml"
    config.write_text("")
    clean_env.setenv("LIENWATCH_CONFIG", str(config))
    clean_env.setenv("LIENWATCH_TEST_PG_ADMIN_URL", "postgresql://x")
    clean_env.setenv("LIENWATCH_BENCH_INGEST_RATE", "1000")
    assert unknown_variables(os.environ) == []
    assert load_settings().data_dir == Path("./lienwatch-data")


def test_an_unknown_toml_key_is_refused_with_the_file_and_the_closest_name(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "lienwatch.toml"
    config.write_text('data_dir = "/x"\nauto_registr = true\n')
    clean_env.setenv("LIENWATCH_CONFIG", str(config))
    with pytest.raises(SettingsError, match=r"lienwatch\.toml: unknown setting: auto_registr "):
        load_settings()
    with pytest.raises(SettingsError, match=r"did you mean auto_register\?"):
        load_settings()


def test_an_unknown_keyword_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match="datadir"):
        load_settings(datadir="/x")


@pytest.mark.parametrize("value", ["gateway,detector,api", "api, Gateway ,detector"])
def test_all_three_roles_in_any_order_are_accepted(
    clean_env: pytest.MonkeyPatch, value: str
) -> None:
    clean_env.setenv("LIENWATCH_ROLES", value)
    settings = load_settings()
    assert settings.role_set == {"gateway", "detector", "api"}


def test_the_default_roles_are_all_three(clean_env: pytest.MonkeyPatch) -> None:
    assert load_settings().role_set == {"gateway", "detector", "api"}


@pytest.mark.parametrize(
    ("value", "roles"),
    [
        ("gateway", {"gateway"}),
        ("api", {"api"}),
        ("detector, gateway", {"gateway", "detector"}),
        ("api,api", {"api"}),
    ],
)
def test_any_subset_of_roles_is_accepted(
    clean_env: pytest.MonkeyPatch, value: str, roles: set[str]
) -> None:
    clean_env.setenv("LIENWATCH_ROLES", value)
    settings = load_settings()
    assert settings.role_set == roles
    assert settings.split


@pytest.mark.parametrize("value", ["", " , "])
def test_no_role_at_all_is_refused(clean_env: pytest.MonkeyPatch, value: str) -> None:
    clean_env.setenv("LIENWATCH_ROLES", value)
    with pytest.raises(SettingsError, match="no role given"):
        load_settings()


@pytest.mark.parametrize("value", ["gateway", "api", "gateway,detector"])
def test_a_split_on_sqlite_is_a_problem_named_clearly(
    clean_env: pytest.MonkeyPatch, value: str
) -> None:
    clean_env.setenv("LIENWATCH_ROLES", value)
    problem = load_settings().split_problem()
    assert problem is not None
    assert "needs a shared PostgreSQL database" in problem


def test_any_split_on_postgresql_is_fine(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("LIENWATCH_DATABASE_URL", "postgresql://db/lienwatch")
    for value in ("api", "gateway", "detector", "gateway,detector", "detector,api", "all"):
        clean_env.setenv("LIENWATCH_ROLES", "gateway,detector,api" if value == "all" else value)
        assert load_settings().split_problem() is None


def test_an_unknown_role_is_named(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("LIENWATCH_ROLES", "gateway,detector,api,mapper")
    with pytest.raises(SettingsError, match="unknown role 'mapper'"):
        load_settings()


def test_roles_as_a_toml_list(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "lienwatch.toml"
    config.write_text('roles = ["api", "detector", "gateway"]\n')
    clean_env.setenv("LIENWATCH_CONFIG", str(config))
    assert load_settings().role_set == {"gateway", "detector", "api"}


def test_the_gateway_settings_of_the_contract(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.jt808_handshake_timeout_s == 30
    assert settings.jt808_reuse_port is False
    clean_env.setenv("LIENWATCH_JT808_HANDSHAKE_TIMEOUT_S", "5")
    clean_env.setenv("LIENWATCH_JT808_REUSE_PORT", "true")
    settings = load_settings()
    assert settings.jt808_handshake_timeout_s == 5
    assert settings.jt808_reuse_port is True
