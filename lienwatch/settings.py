"""All configuration in one typed place: `LIENWATCH_*` variables over an optional TOML file.

The TOML file is named by `LIENWATCH_CONFIG`; a variable in the environment wins over the file.
Keys in the file are the setting names in lower case without the prefix (`data_dir = "..."`).

A misspelt setting is an error, not silence: an unknown `LIENWATCH_*` variable or TOML key
raises SettingsError naming it (with the closest known name). Not settings, and ignored here:
`LIENWATCH_CONFIG` itself and the reserved prefixes `LIENWATCH_TEST_` (the test suite's service
URLs) and `LIENWATCH_BENCH_` (benchmark knobs).
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from api.map_options import check_tiles_url


class SettingsError(ValueError):
    """The configuration file or a variable is unusable; the message names which."""


ENV_PREFIX = "LIENWATCH_"
CONFIG_VARIABLE = "LIENWATCH_CONFIG"
# Variables under these prefixes belong to the tests and benchmarks, not to the settings.
RESERVED_PREFIXES = ("LIENWATCH_TEST_", "LIENWATCH_BENCH_")
ROLES = ("gateway", "detector", "api")


def _suggest(name: str, known: list[str], prefix: str = "") -> str:
    """ " (did you mean X?)" for the closest known name, or nothing when none is close."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """`LIENWATCH_*` variables that name no setting (case-insensitive, like the loader)."""
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    found = []
    for variable in environ:
        upper = variable.upper()
        if not upper.startswith(ENV_PREFIX) or upper == CONFIG_VARIABLE:
            continue
        if upper.startswith(RESERVED_PREFIXES) or upper in known:
            continue
        found.append(variable)
    return sorted(found)


def _check_environment(environ: Mapping[str, str]) -> None:
    unknown = unknown_variables(environ)
    if not unknown:
        return
    known = [name.upper() for name in Settings.model_fields]
    named = ", ".join(
        v + _suggest(v.upper().removeprefix(ENV_PREFIX), known, ENV_PREFIX) for v in unknown
    )
    raise SettingsError(f"unknown environment variable{'s' if len(unknown) > 1 else ''}: {named}")


class _TomlFileSource(PydanticBaseSettingsSource):
    """Reads the file named by LIENWATCH_CONFIG, if any."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self._values: dict[str, Any] = {}
        path = os.environ.get("LIENWATCH_CONFIG")
        if path:
            try:
                with open(path, "rb") as fh:
                    loaded = tomllib.load(fh)
            except OSError as exc:
                raise SettingsError(f"{path}: cannot read configuration file: {exc}") from exc
            except tomllib.TOMLDecodeError as exc:
                raise SettingsError(f"{path}: not valid TOML: {exc}") from exc
            self._values = {str(k).lower(): v for k, v in loaded.items()}
            known = list(settings_cls.model_fields)
            unknown = sorted(k for k in self._values if k not in settings_cls.model_fields)
            if unknown:
                named = ", ".join(k + _suggest(k, known) for k in unknown)
                raise SettingsError(
                    f"{path}: unknown setting{'s' if len(unknown) > 1 else ''}: {named}"
                )

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._values.items() if k in self.settings_cls.model_fields}


def _parse_address(value: str, default_host: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = default_host, value
    try:
        port_number = int(port)
    except ValueError:
        raise ValueError(f"{value!r} is not HOST:PORT") from None
    if not 0 <= port_number <= 65535:
        raise ValueError(f"port {port_number} out of range")
    return (host.strip("[]") or default_host), port_number


class Settings(BaseSettings):
    """Settings every deployment relies on (contracts section 7) and our own additions."""

    model_config = SettingsConfigDict(env_prefix="LIENWATCH_", extra="forbid")

    data_dir: Path = Path("./lienwatch-data")
    database_url: str | None = None
    redis_url: str | None = None
    mqtt_url: str | None = None
    jt808_listen: str = "0.0.0.0:6808"
    api_listen: str = "127.0.0.1:8000"
    auto_register: bool = False
    admin_api_key: str | None = None
    # A connection not authenticated within this many seconds is closed.
    jt808_handshake_timeout_s: float = Field(default=30.0, gt=0)
    # Which parts this process runs (docs/deploy.md); a subset needs PostgreSQL, where the
    # processes of a split deployment meet.
    roles: str | list[str] = ",".join(ROLES)
    # SO_REUSEPORT on the gateway's socket, so several processes on one host share the port.
    jt808_reuse_port: bool = False
    # Added to this process's nice value at start: an api process on the cores of a gateway
    # (10) leaves the gateway's acknowledgements first in line (docs/deploy.md).
    nice: int = Field(default=0, ge=0, le=19)

    # Logs on stderr: "text" for people, "json" (one object per line) for log collectors.
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Gateway limits (our own).
    jt808_idle_timeout_s: float = Field(default=600.0, gt=0)
    jt808_max_frame_bytes: int = Field(default=4096, ge=64)
    jt808_max_errors: int = Field(default=20, ge=1)
    # Caps on open JT808 connections, in total and per source address; 0 is no cap (loopback
    # load tests open thousands from one address).
    jt808_max_connections: int = Field(default=0, ge=0)
    jt808_max_connections_per_address: int = Field(default=0, ge=0)
    # Under load the gateway reads its sockets every this many microseconds instead of waking
    # per packet (ingest.read_coalescing); 0 wakes per packet always.
    jt808_read_coalesce_us: float = Field(default=500.0, ge=0, le=5000)
    # Journal: group commit window and the bound before backpressure.
    journal_commit_ms: float = Field(default=5.0, gt=0)
    journal_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024 * 1024)

    # Alerts (our own). Webhooks get every new alert as JSON, signed with HMAC-SHA256 of the
    # body when a secret is set; URLs comma-separated in the environment, or a TOML list.
    webhook_urls: str | list[str] = ""
    webhook_secret: str | None = None
    webhook_max_attempts: int = Field(default=8, ge=1)
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    webhook_allow_private: bool = False
    # Alerts a live-stream client may fall behind by before it is dropped.
    alert_stream_queue: int = Field(default=1000, ge=1)
    # The largest HTTP request body, refused (413) before it is read; fence imports may be up
    # to 64 MiB whatever this says.
    api_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # The share of one core the API's long answers (100,000-point tracks) are written with
    # (api.long_answers); unset: 0.25 where a gateway runs in the same process, else all of it.
    api_long_answer_share: float | None = Field(default=None, gt=0, le=1)
    # The gateway's MQTT client id (contracts section 5 topics), unique per gateway process and
    # the same across its restarts (the broker keeps its session); empty derives one from the
    # host name and the data directory.
    mqtt_client_id: str = ""
    # The shared subscription's group (`$share/GROUP/lienwatch/up/+`, contracts section 9), so
    # several gateways split the MQTT trackers (on a broker that shares by topic: every frame of
    # a terminal must reach one gateway); empty subscribes to `lienwatch/up/+` alone, for a
    # broker without shared subscriptions.
    mqtt_share_group: str = "lienwatch"
    # Positions older than this many days leave the store (checked every 6 h); unset keeps all.
    retention_days: int | None = Field(default=None, ge=1)
    # Live detection beside the gateway; off for a gateway that only stores positions.
    detect: bool = True
    # Detectors without a gateway split the vehicles into this many partitions (docs/deploy.md);
    # every detector of a deployment must use the same count.
    detector_partitions: int = Field(default=16, ge=1, le=1024)
    # RULES.toml with threshold overrides (docs/rules.md); the defaults when unset.
    rules_file: Path | None = None
    # How often the running engine looks for fence and device changes made through the API
    # or by another process.
    reload_interval_s: float = Field(default=2.0, gt=0)
    # Post-loan work: how often active loans past their due date are moved to overdue, and the
    # trackers' default reporting interval (JT/T 808 parameter 0x0029) while the car's loan is
    # overdue and otherwise.
    loan_sweep_interval_s: float = Field(default=3600.0, gt=0)
    overdue_report_interval_s: int = Field(default=10, ge=1)
    normal_report_interval_s: int = Field(default=30, ge=1)
    # The map page: an optional raster tile layer (an XYZ URL template of Web-Mercator tiles)
    # and the datum its coordinates are in (a Chinese service is GCJ-02 or BD-09: the page is
    # then served positions and fences in that datum); unset, an offline plain basemap.
    map_tiles_url: str | None = None
    map_tiles_crs: Literal["wgs84", "gcj02", "bd09"] = "wgs84"
    map_tiles_attribution: str = Field(default="", max_length=300)

    @field_validator("jt808_listen", "api_listen")
    @classmethod
    def _check_address(cls, value: str) -> str:
        _parse_address(value, "0.0.0.0")
        return value

    @field_validator("map_tiles_url")
    @classmethod
    def _check_tiles_url(cls, value: str | None) -> str | None:
        return None if not value else check_tiles_url(value)

    @field_validator("roles")
    @classmethod
    def _check_roles(cls, value: str | list[str]) -> str:
        names = value.split(",") if isinstance(value, str) else value
        cleaned = [n.strip().lower() for n in names if n.strip()]
        unknown = [n for n in cleaned if n not in ROLES]
        if unknown:
            raise ValueError(f"unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}")
        if not cleaned:
            raise ValueError(f"no role given; give some of {','.join(ROLES)} (all by default)")
        return ",".join(r for r in ROLES if r in cleaned)

    @field_validator("webhook_urls")
    @classmethod
    def _check_webhooks(cls, value: str | list[str]) -> list[str]:
        urls = value.split(",") if isinstance(value, str) else value
        cleaned = [u.strip() for u in urls if u.strip()]
        for url in cleaned:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http:// or https:// URL")
        return cleaned

    @property
    def webhooks(self) -> tuple[str, ...]:
        """The webhook URLs as a tuple (none when unset)."""
        urls = self.webhook_urls
        return tuple(urls) if isinstance(urls, list) else tuple(u for u in [urls] if u)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        _check_environment(os.environ)
        return (init_settings, env_settings, _TomlFileSource(settings_cls))

    @property
    def role_set(self) -> frozenset[str]:
        """The roles this process runs."""
        roles = self.roles
        return frozenset(roles.split(",") if isinstance(roles, str) else roles)

    @property
    def split(self) -> bool:
        """Whether this process runs only some of the roles (others run elsewhere)."""
        return self.role_set != frozenset(ROLES)

    def split_problem(self) -> str | None:
        """Why this split cannot run, or None: the processes of a split deployment share one
        PostgreSQL database (SQLite is one process's file; two processes writing it would
        wait on each other's locks, and none could tell the others anything)."""
        if not self.split:
            return None
        roles = ",".join(r for r in ROLES if r in self.role_set)
        if self.database_url is None:
            return (
                f"roles {roles}: running only some roles needs a shared PostgreSQL database"
                " (set LIENWATCH_DATABASE_URL); with SQLite run all three in one process"
            )
        return None

    @property
    def jt808_address(self) -> tuple[str, int]:
        return _parse_address(self.jt808_listen, "0.0.0.0")

    @property
    def api_address(self) -> tuple[str, int]:
        return _parse_address(self.api_listen, "127.0.0.1")


def load_settings(**overrides: Any) -> Settings:
    """Builds the settings, turning pydantic's errors into one readable SettingsError.

    Unknown `LIENWATCH_*` variables and TOML keys (refused by the sources themselves, so a bare
    `Settings()` refuses them too) raise SettingsError before any value is validated.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        raise SettingsError(
            f"setting {field}: {first['msg'].removeprefix('Value error, ')}"
        ) from exc
