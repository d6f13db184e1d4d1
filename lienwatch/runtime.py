"""Process wiring for `lienwatch serve` (and `demo`): settings → store, journal, gateway,
live detection and alert fan-out (lienwatch.alerting), the HTTP API.

The one place that knows every part; the parts only know what they are handed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import resource
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from alerts.delivery.hub import AlertHub
from api.app import Readiness, create_app
from api.auth import ensure_admin_key, hash_key
from api.context import ApiContext, wall_clock_ms
from api.loan_views import local_date
from api.map_options import MapOptions
from api.routes.alerts import alerts_router
from api.server import ApiServer
from api.stores import StoreAccess
from geofence.crs import Crs
from ingest.commands import CommandOutcome
from ingest.gateway import Gateway, GatewayConfig
from ingest.journal import Journal
from ingest.journal_segments import RecoveryReport
from ingest.jt808.messages import Message
from ingest.mqtt_bridge import MqttBridge
from lienwatch.alerting import Alerting, AlertingCollector, start_alerting
from lienwatch.loan_sweep import LoanSweeper, Moved
from lienwatch.loan_watch import ReportIntervals
from lienwatch.retention import retention_task
from lienwatch.settings import Settings
from loans import CaseAction, Loan
from pipeline.thresholds import RuleBook
from store import Device, Store, migrate, open_store

log = logging.getLogger("lienwatch")


def install_event_loop_policy() -> None:
    """uvloop when it is installed: a faster loop for thousands of connections."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - optional
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def raise_open_files_limit() -> int:
    """Tens of thousands of trackers need as many sockets: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            return hard
    return soft


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)


@dataclass(slots=True)
class Services:
    """The running parts of one process, so `demo` can add its own on top."""

    settings: Settings
    journal: Journal
    gateway: Gateway
    alerting: Alerting
    gateway_address: tuple[str, int]
    api_address: tuple[str, int]
    # The admin key to show: the one handed to start_services, or one created at this start.
    admin_key: str | None = None
    mqtt: MqttBridge | None = None
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    stopping: bool = False

    @property
    def hub(self) -> AlertHub:
        return self.alerting.hub

    def store_factory(self) -> Store:
        return open_store(self.settings.database_url, self.settings.data_dir)

    async def close(self) -> None:
        """API first, then the gateway (acknowledging what it read, over MQTT too), then the
        alert side."""
        self.stopping = True
        for closer in reversed(self.closers):
            with contextlib.suppress(Exception):
                await closer()
        if self.mqtt is not None:
            self.mqtt.stop_intake()
        await self.gateway.stop()
        if self.mqtt is not None:
            await self.mqtt.close()
        await self.alerting.close()
        self.journal.close()


def _bootstrap_key(store: Store, settings: Settings, given: str | None) -> str | None:
    """The admin key to print: `given` (stored as an admin key), else the configured one is
    made sure of, else a new one when the store has no admin key yet."""
    if given is not None:
        ensure_admin_key(store, given)
        return given
    return ensure_admin_key(store, settings.admin_api_key)


def _fixed_keys(settings: Settings, given: str | None) -> frozenset[str]:
    """Hashes of the keys `_bootstrap_key` stores again at every start."""
    keys = (given, settings.admin_api_key)
    return frozenset(hash_key(k.strip()) for k in keys if k is not None and k.strip())


async def start_services(
    settings: Settings, *, rules: RuleBook | None = None, admin_key: str | None = None
) -> Services:
    """Migrates the store, opens the journal (replaying what was not drained), starts the alert
    side, the gateway and the API; returns once both listen."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    files = raise_open_files_limit()
    if files < 20_000:
        log.warning("only %d open files allowed: that many connections at most", files)
    await asyncio.to_thread(migrate, settings.database_url, settings.data_dir)

    def store_factory() -> Store:
        return open_store(settings.database_url, settings.data_dir)

    def bootstrap() -> str | None:
        store = store_factory()
        try:
            return _bootstrap_key(store, settings, admin_key)
        finally:
            store.close()

    shown_key = await asyncio.to_thread(bootstrap)
    journal = Journal(settings.data_dir / "journal", max_bytes=settings.journal_max_bytes)
    log_recovery(journal.recovery)
    if journal.depth_bytes:
        log.info("journal holds %d bytes not yet stored: replaying", journal.depth_bytes)
    try:
        alerting = start_alerting(settings, store_factory, rules)
    except BaseException:
        journal.close()
        raise
    host, port = settings.jt808_address
    gateway = Gateway(
        GatewayConfig(
            host=host,
            port=port,
            auto_register=settings.auto_register,
            idle_timeout_s=settings.jt808_idle_timeout_s,
            handshake_timeout_s=settings.jt808_handshake_timeout_s,
            reuse_port=settings.jt808_reuse_port,
            max_frame_bytes=settings.jt808_max_frame_bytes,
            max_errors=settings.jt808_max_errors,
            max_connections=settings.jt808_max_connections,
            max_connections_per_address=settings.jt808_max_connections_per_address,
            commit_interval_s=settings.journal_commit_ms / 1000,
        ),
        journal=journal,
        store_factory=store_factory,
        on_positions=alerting.on_positions,
        on_alerts=alerting.raise_alerts,
        on_reading_paused=alerting.reading_paused,
    )
    try:
        address = await gateway.start()
    except BaseException:
        await alerting.close()
        journal.close()
        raise
    alerting.start_watching()
    AlertingCollector(alerting, gateway.metrics.registry)

    # The API runs on its own thread and loop (api/server.py): what it tells the gateway's
    # side is handed over to this loop, never run from the API's thread.
    main_loop = asyncio.get_running_loop()

    def device_changed_here(device: Device) -> None:
        gateway.registry.put(device)  # the gateway checks the new auth code at once
        alerting.devices_changed()

    def device_changed(device: Device) -> None:
        main_loop.call_soon_threadsafe(device_changed_here, device)

    def reprovisioned_here(device: Device) -> None:
        gateway.registry.reprovision(device)  # the old identity and code stop working now
        session = gateway.sessions.get(device.terminal)
        if session is not None:  # the replaced hardware must register again
            session.close("re-provisioned")
        alerting.devices_changed()

    def device_reprovisioned(device: Device) -> None:
        main_loop.call_soon_threadsafe(reprovisioned_here, device)

    intervals = ReportIntervals(
        store_factory,
        gateway.send_command,
        overdue_interval_s=settings.overdue_report_interval_s,
        normal_interval_s=settings.normal_report_interval_s,
        on_change=alerting.loans_changed,
    )

    def swept(moved: list[Moved]) -> None:
        for loan, action in moved:
            intervals.loan_changed(loan, action)

    sweeper = LoanSweeper(
        store_factory,
        settings.loan_sweep_interval_s,
        today=lambda: local_date(wall_clock_ms()),
        clock_ms=wall_clock_ms,
        on_moved=swept,
    )

    async def send_command(terminal: str, message: Message) -> CommandOutcome:
        sent = asyncio.run_coroutine_threadsafe(gateway.send_command(terminal, message), main_loop)
        return await asyncio.wrap_future(sent)

    def loan_changed(loan: Loan, action: CaseAction) -> None:
        main_loop.call_soon_threadsafe(intervals.loan_changed, loan, action)

    stores = StoreAccess(store_factory)
    context = ApiContext(
        stores=stores,
        send_command=send_command,
        online=lambda terminal: terminal in gateway.sessions,
        device_changed=device_changed,
        device_reprovisioned=device_reprovisioned,
        loan_changed=loan_changed,
        fixed_keys=_fixed_keys(settings, admin_key),
        max_body_bytes=settings.api_max_body_bytes,
        map_options=MapOptions(
            tiles_url=settings.map_tiles_url,
            tiles_crs=Crs(settings.map_tiles_crs),
            tiles_attribution=settings.map_tiles_attribution,
        ),
    )
    context.extra_routers.append(
        alerts_router(stores, alerting.hub, context.auth.viewer, act=context.auth.officer)
    )
    api_host, api_port = settings.api_address
    api = ApiServer(
        create_app(
            registry=gateway.metrics.registry,
            ready=lambda: readiness(services),
            context=context,
        ),
        api_host,
        api_port,
    )
    services = Services(settings, journal, gateway, alerting, address, ("", 0), shown_key)
    services.closers.append(intervals.close)
    sweeper.start()
    services.closers.append(sweeper.close)
    if settings.retention_days is not None:
        retention = retention_task(store_factory, settings.retention_days, wall_clock_ms)
        retention.start()
        services.closers.append(retention.close)
    try:
        if settings.mqtt_url:
            services.mqtt = MqttBridge(
                gateway, settings.mqtt_url, client_id=settings.mqtt_client_id
            )
            await services.mqtt.start()
        services.api_address = await api.start()
    except BaseException:
        await services.close()
        raise
    services.closers.append(api.stop)
    return services


def readiness(services: Services) -> Readiness:
    """/healthz: degraded (serving, with reasons) while waiting on the database or the disk;
    not serving only while stopping."""
    if services.stopping:
        return Readiness("stopping")
    reasons: list[str] = []
    gateway, journal = services.gateway, services.journal
    if journal.out_of_space:
        reasons.append("journal: no space left on its disk; reading paused until there is")
    elif gateway.reading_paused:
        reasons.append("journal full: reading paused until the store catches up")
    if gateway.store_error is not None:
        reasons.append(
            f"database unavailable, positions wait in the journal: {gateway.store_error}"
        )
    detector = services.alerting.detector
    if detector is not None and detector.stats.unsaved:
        reasons.append(f"{detector.stats.unsaved} alerts wait for the database")
    return Readiness.of(reasons)


def log_recovery(report: RecoveryReport) -> None:
    """What opening the journal found: a warning when a tail was cut or records were lost."""
    damaged = sum(d.dropped_bytes for d in report.damaged)
    line = (
        "journal opened: %d segments, %d records, %d not yet stored; %d torn tails cut, "
        "%d damaged ranges (%d bytes, %d records lost)"
    )
    args = (
        report.segments,
        report.records,
        report.pending_records,
        len(report.truncations),
        len(report.damaged),
        damaged,
        report.lost_records,
    )
    if report.truncations or report.damaged:
        log.warning(line, *args)
    else:
        log.info(line, *args)


async def wait_for_stop(failed: asyncio.Event | None = None) -> bool:
    """Returns on SIGINT or SIGTERM (False), or once `failed` is set (True)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waits = [asyncio.ensure_future(stop.wait())]
    if failed is not None:
        waits.append(asyncio.ensure_future(failed.wait()))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return failed is not None and failed.is_set()


def tune_garbage_collector() -> None:
    """Long-lived start-up objects leave the collector's scans, and young collections run less
    often: a full collection over a large heap otherwise stalls every connection at once."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    # The event loop thread takes the interpreter back from the drain and commit threads
    # after 1 ms instead of 5: their batches never hold every connection waiting.
    sys.setswitchinterval(0.001)


# SIGTERM to exit, at any time: an orchestrator kills a process that takes longer. What was
# not stored by then waits in the journal (fsynced) for the next start.
STOP_BUDGET_S = 4.0
EXIT_STOP_OVERDUE = 0  # a stop that overran is still a stop asked for


async def serve(settings: Settings) -> None:
    services = await start_services(settings)
    tune_garbage_collector()
    host, port = services.gateway_address
    print(f"lienwatch: JT808 gateway listening on {host}:{port}", flush=True)
    api_host, api_port = services.api_address
    print(f"lienwatch: API listening on http://{api_host}:{api_port}", flush=True)
    if services.admin_key is not None:  # created at this start: shown once, stored hashed
        print(f"lienwatch: admin API key (shown once): {services.admin_key}", flush=True)
    failure = None
    try:
        if await wait_for_stop(services.gateway.failed):
            failure = services.gateway.group.failure
    finally:
        print("lienwatch: stopping", flush=True)
        try:
            await asyncio.wait_for(services.close(), STOP_BUDGET_S)
        except TimeoutError:
            # Worker threads stuck in a call (a database that stopped answering) would hold
            # the interpreter's exit: leave without them.
            log.error("stopping took over %.0f s: exiting now", STOP_BUDGET_S)
            services.journal.close()
            logging.shutdown()
            sys.stdout.flush()
            os._exit(EXIT_STOP_OVERDUE if failure is None else 1)
    if failure is not None:  # nothing more can be made durable: exit, restart recovers
        raise failure
