"""Settings: LIENWATCH_* variables over an optional TOML file, with readable errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from lienwatch.runtime import JsonFormatter
from lienwatch.settings import SettingsError, load_settings


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
