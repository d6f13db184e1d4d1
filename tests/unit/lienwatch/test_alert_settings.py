"""Alert settings: webhook URLs from the environment (comma-separated) or TOML (a list)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lienwatch.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LIENWATCH_CONFIG", "LIENWATCH_WEBHOOK_URLS", "LIENWATCH_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)


def test_no_webhooks_by_default() -> None:
    settings = load_settings()
    assert settings.webhooks == ()
    assert settings.webhook_secret is None
    assert (settings.webhook_max_attempts, settings.alert_stream_queue) == (8, 1000)


def test_webhook_urls_come_comma_separated_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIENWATCH_WEBHOOK_URLS", " https://a.example/h , http://127.0.0.1:9/x,")
    monkeypatch.setenv("LIENWATCH_WEBHOOK_SECRET", "s")
    settings = load_settings()
    assert settings.webhooks == ("https://a.example/h", "http://127.0.0.1:9/x")
    assert settings.webhook_secret == "s"


def test_webhook_urls_may_be_a_toml_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "lienwatch.toml"
    config.write_text('webhook_urls = ["https://a.example/h"]\n')
    monkeypatch.setenv("LIENWATCH_CONFIG", str(config))
    assert load_settings().webhooks == ("https://a.example/h",)


def test_a_webhook_url_that_is_not_http_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIENWATCH_WEBHOOK_URLS", "ftp://x")
    with pytest.raises(SettingsError, match=r"webhook_urls.*ftp://x"):
        load_settings()
