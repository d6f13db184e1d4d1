"""`lienwatch demo` set-up: the demo's forced settings, port choice and the printed alert line."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from lienwatch.commands.demo import alert_line, demo_settings, port_or_any
from lienwatch.settings import load_settings


def test_a_free_port_is_kept_a_taken_one_becomes_any() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert port_or_any(port) == 0
    assert port_or_any(port) == port
    assert port_or_any(0) == 0


def test_demo_settings_force_loopback_auto_register_and_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIENWATCH_CONFIG", raising=False)
    monkeypatch.setenv("LIENWATCH_AUTO_REGISTER", "false")
    monkeypatch.setenv("LIENWATCH_JT808_LISTEN", "0.0.0.0:0")
    monkeypatch.setenv("LIENWATCH_API_LISTEN", "0.0.0.0:0")
    monkeypatch.setenv("LIENWATCH_DATABASE_URL", "postgresql://db.example/lw")
    monkeypatch.setenv("LIENWATCH_DETECT", "false")
    monkeypatch.delenv("LIENWATCH_LOG_LEVEL", raising=False)
    settings = demo_settings(load_settings(), tmp_path)
    assert settings.auto_register is True
    assert settings.detect is True
    assert settings.jt808_address == ("127.0.0.1", 0)
    assert settings.api_address == ("127.0.0.1", 0)
    assert settings.data_dir == tmp_path
    assert settings.database_url == "postgresql://db.example/lw"  # the environment's store
    assert settings.log_level == "WARNING"


def test_a_log_level_set_in_the_environment_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIENWATCH_CONFIG", raising=False)
    monkeypatch.setenv("LIENWATCH_LOG_LEVEL", "DEBUG")
    assert demo_settings(load_settings(), tmp_path).log_level == "DEBUG"


def test_an_alert_line_shows_time_type_severity_vehicle_device_and_fence() -> None:
    line = alert_line(
        {
            "time": "2025-01-01T08:00:20+08:00",
            "type": "hotspot_dwell",
            "severity": "high",
            "vehicle_id": "VIN-LHZ0000000000001",
            "device_id": "013957100006",
            "fence_id": "pawn-gongshu",
        }
    )
    assert line.split() == [
        "2025-01-01", "08:00:20+08:00", "hotspot_dwell", "high",
        "VIN-LHZ0000000000001", "013957100006", "pawn-gongshu",
    ]  # fmt: skip
    no_fence = alert_line(
        {"time": "t", "type": "power_cut", "severity": "critical", "vehicle_id": "V",
         "device_id": "D", "fence_id": None}
    )  # fmt: skip
    assert no_fence.split() == ["t", "power_cut", "critical", "V", "D"]
