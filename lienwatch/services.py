"""The parts one `serve` process runs, by its roles (`LIENWATCH_ROLES`, docs/deploy.md).

- `gateway`: journal, JT808 gateway (TCP, and MQTT when configured); on a shared database it
  also writes which sessions it holds and delivers the commands other processes queue for them.
- `detector`: the live detector and the alert fan-out, with the overdue-loan sweep and
  position retention; fed by this process's gateway, or without one by the store's positions
  stream in commit order, sharing the vehicles' partitions with the other detector processes
  (lienwatch.partitioned_feed).
- `api`: the HTTP API and map on a thread of its own. Beside a gateway it sends commands and
  answers `online` through it; alone it holds nothing: reads come from the store, commands go
  through the store to the gateway holding the session (lienwatch.command_routing), the alert
  stream follows the store (lienwatch.alert_feed).

All three in one process is what `serve` runs by default and `demo` runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import socket
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from alerts.delivery.hub import AlertHub
from alerts.lifecycle import StoredAlert
from alerts.model import Alert
from api.app import Readiness, create_app
from api.auth import ensure_admin_key, hash_key
from api.context import ApiContext, wall_clock_ms
from api.loan_views import local_date
from api.map_boundaries import packaged_outlines
from api.map_options import MapOptions
from api.routes.alerts import alerts_router
from api.server import ApiServer
from api.stores import StoreAccess
from geofence.crs import Crs
from ingest.gateway import Gateway, GatewayConfig
from ingest.journal import Journal
from ingest.journal_segments import RecoveryReport
from ingest.mqtt_bridge import MqttBridge, stable_client_id
from ingest.presence import SessionPresence, new_gateway_id
from lienwatch.alert_feed import AlertFeed
from lienwatch.alerting import Alerting, AlertingCollector, load_rules, start_alerting
from lienwatch.command_routing import CommandRouter
from lienwatch.loan_sweep import LoanSweeper, Moved
from lienwatch.loan_watch import ReportIntervals
from lienwatch.partitioned_feed import PartitionedFeed, PartitionMetrics
from lienwatch.retention import retention_task
from lienwatch.settings import Settings
from loans import CaseAction, Loan
from pipeline.partitioned import PartitionedDetector
from pipeline.thresholds import RuleBook
from store import Device, Store, migrate, open_store
from store.notices import (
    ALERT_CHANGES_CHANNEL,
    COMMANDS_CHANNEL,
    DEVICES_CHANNEL,
    NoticeListener,
)
from store.partition_locks import PartitionLocks

log = logging.getLogger("lienwatch")
RESYNC_S = 30.0  # how often a gateway looks for queued commands of terminals it holds
# Beside a gateway, the API writes long answers (tracks) with at most this share of one core:
# the interpreter is shared, and acknowledgements come first (api.long_answers).
GATEWAY_SIDE_LONG_ANSWER_SHARE = 0.25


@dataclass(slots=True)
class Services:
    """The running parts of one process (those of its roles), so `demo` can add its own."""

    settings: Settings
    journal: Journal | None = None
    gateway: Gateway | None = None
    alerting: Alerting | None = None
    gateway_address: tuple[str, int] | None = None
    api_address: tuple[str, int] | None = None
    # The admin key to show: the one handed to start_services, or one created at this start.
    admin_key: str | None = None
    mqtt: MqttBridge | None = None
    api_hub: AlertHub | None = None  # the API's stream when no detector runs here
    # /metrics: the gateway's registry where one runs, else one of this process's own.
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    stopping: bool = False
    origin: str = field(default_factory=new_gateway_id)  # this process, in its notices

    @property
    def hub(self) -> AlertHub:
        if self.alerting is not None:
            return self.alerting.hub
        assert self.api_hub is not None, "no alert hub in this process"
        return self.api_hub

    def store_factory(self) -> Store:
        return open_store(self.settings.database_url, self.settings.data_dir)

    @property
    def shared(self) -> bool:
        """A database other processes use too: PostgreSQL."""
        return self.settings.database_url is not None

    async def close(self) -> None:
        """API first, then the gateway (acknowledging what it read, over MQTT too), then the
        alert side."""
        self.stopping = True
        for closer in reversed(self.closers):
            with contextlib.suppress(Exception):
                await closer()
        if self.mqtt is not None:
            self.mqtt.stop_intake()
        if self.gateway is not None:
            await self.gateway.stop()
        if self.mqtt is not None:
            await self.mqtt.close()
        if self.alerting is not None:
            await self.alerting.close()
        if self.journal is not None:
            self.journal.close()


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
    """Migrates the store and starts the parts of this process's roles; returns once they
    listen."""
    roles = settings.role_set
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if "gateway" in roles:
        files = raise_open_files_limit()
        if files < 20_000:
            log.warning("only %d open files allowed: that many connections at most", files)
    await asyncio.to_thread(migrate, settings.database_url, settings.data_dir)
    services = Services(settings)

    def bootstrap() -> str | None:
        store = services.store_factory()
        try:
            return _bootstrap_key(store, settings, admin_key)
        finally:
            store.close()

    if "api" in roles:
        services.admin_key = await asyncio.to_thread(bootstrap)
    try:
        if "gateway" in roles:
            await _start_gateway(services, rules)
        elif "detector" in roles:
            _start_detector_alone(services, rules)
        router = _command_router(services)
        intervals = _start_loan_work(services, router)
        if services.shared:
            _start_listening(services)
        if "api" in roles:
            await _start_api(services, router, intervals, admin_key, rules)
    except BaseException:
        await services.close()
        raise
    return services


async def _start_gateway(services: Services, rules: RuleBook | None) -> None:
    """Journal (replaying what was not stored), alert side when detecting here, gateway, MQTT."""
    settings = services.settings
    journal = Journal(settings.data_dir / "journal", max_bytes=settings.journal_max_bytes)
    services.journal = journal
    log_recovery(journal.recovery)
    if journal.depth_bytes:
        log.info("journal holds %d bytes not yet stored: replaying", journal.depth_bytes)
    alerting = None
    if "detector" in settings.role_set:
        alerting = start_alerting(settings, services.store_factory, rules)
        services.alerting = alerting
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
            read_coalesce_s=settings.jt808_read_coalesce_us / 1e6,
        ),
        journal=journal,
        store_factory=services.store_factory,
        on_positions=alerting.on_positions if alerting is not None else None,
        on_alerts=alerting.raise_alerts if alerting is not None else _store_alerts(services),
        on_reading_paused=alerting.reading_paused if alerting is not None else None,
    )
    if services.shared:
        where = f"{socket.gethostname()} pid {os.getpid()}"
        gateway.presence = SessionPresence(gateway.store, services.origin, where)
    services.gateway_address = await gateway.start()
    services.gateway = gateway
    services.registry = gateway.metrics.registry
    if alerting is not None:
        alerting.start_watching()
        AlertingCollector(alerting, services.registry)
    if settings.mqtt_url:
        services.mqtt = MqttBridge(
            gateway,
            settings.mqtt_url,
            client_id=settings.mqtt_client_id or stable_client_id(settings.data_dir),
            share_group=settings.mqtt_share_group,
        )
        await services.mqtt.start()


def _start_detector_alone(services: Services, rules: RuleBook | None) -> None:
    """The detector reads what the gateways stored, in commit order, from the store, for the
    partitions it owns beside the other detector processes."""
    settings = services.settings
    alerting = start_alerting(settings, services.store_factory, rules, partitioned=True)
    services.alerting = alerting
    alerting.start_watching()
    AlertingCollector(alerting, services.registry)
    detector = alerting.detector
    if not isinstance(detector, PartitionedDetector):  # LIENWATCH_DETECT=false: sinks only
        return
    assert settings.database_url is not None  # a split runs on PostgreSQL only
    feed = PartitionedFeed(
        services.store_factory,
        detector,
        PartitionLocks(settings.database_url, settings.detector_partitions),
        member=services.origin,
        place=f"{socket.gethostname()} pid {os.getpid()}",
    )
    PartitionMetrics(feed, services.registry)
    feed.start()

    async def close() -> None:
        await asyncio.to_thread(feed.close)

    services.closers.append(close)


def _store_alerts(services: Services) -> Callable[[Sequence[Alert]], None]:
    """Alerts a gateway without a detector beside it raises (`device_conflict`): stored (with
    their webhook outbox rows) on the gateway's store thread; the API processes' streams and
    the detector process's webhook deliverer take them from there."""

    def store_alerts(alerts: Sequence[Alert]) -> None:
        gateway = services.gateway
        urls = services.settings.webhooks
        for alert in alerts:
            log.warning("%s device=%s %s", alert.type.value, alert.device_id, alert.details)
        if gateway is None:  # pragma: no cover - raised only by a running gateway
            return
        batch = list(alerts)

        def add(store: Store) -> None:
            store.add_alerts(batch, wall_clock_ms(), urls)

        gateway.store.spawn(gateway.store.call(add))

    return store_alerts


def _command_router(services: Services) -> CommandRouter:
    stores = StoreAccess(services.store_factory, threads=2)

    async def close() -> None:
        await asyncio.to_thread(stores.close)

    services.closers.append(close)
    gateway = services.gateway
    timeout = gateway.config.command_timeout_s + 2 if gateway is not None else 32.0
    return CommandRouter(
        stores,
        shared=services.shared,
        gateway=gateway,
        gateway_loop=asyncio.get_running_loop(),
        answer_timeout_s=timeout,
    )


def _start_loan_work(services: Services, router: CommandRouter) -> ReportIntervals:
    """Trackers' reporting intervals follow their car's loan state (loan changes made through
    this process's API, and the overdue sweep where the detector runs); retention there too."""
    settings, alerting = services.settings, services.alerting
    intervals = ReportIntervals(
        services.store_factory,
        router.send,
        overdue_interval_s=settings.overdue_report_interval_s,
        normal_interval_s=settings.normal_report_interval_s,
        on_change=alerting.loans_changed if alerting is not None else None,
    )
    services.closers.append(intervals.close)
    if "detector" not in settings.role_set:
        return intervals

    def swept(moved: list[Moved]) -> None:
        for loan, action in moved:
            intervals.loan_changed(loan, action)

    sweeper = LoanSweeper(
        services.store_factory,
        settings.loan_sweep_interval_s,
        today=lambda: local_date(wall_clock_ms()),
        clock_ms=wall_clock_ms,
        on_moved=swept,
    )
    sweeper.start()
    services.closers.append(sweeper.close)
    if settings.retention_days is not None:
        retention = retention_task(services.store_factory, settings.retention_days, wall_clock_ms)
        retention.start()
        services.closers.append(retention.close)
    return intervals


def _start_listening(services: Services) -> None:
    """Notices from the other processes: commands queued for terminals this gateway holds,
    devices changed and alerts acknowledged or resolved through another process's API."""
    gateway, alerting = services.gateway, services.alerting
    loop = asyncio.get_running_loop()

    def deliver(channel: str, payload: str) -> None:  # on the listener's thread
        if channel == COMMANDS_CHANNEL and gateway is not None:
            loop.call_soon_threadsafe(gateway.commands.wake, payload)
            return
        with contextlib.suppress(ValueError, KeyError, TypeError):
            notice = json.loads(payload)
            if notice["origin"] == services.origin:
                return
            if channel == DEVICES_CHANNEL:
                terminal, again = str(notice["terminal"]), bool(notice["reprovisioned"])
                loop.call_soon_threadsafe(_device_notice, services, terminal, again)
            elif channel == ALERT_CHANGES_CHANNEL:
                alert_id = int(notice["id"])
                asyncio.run_coroutine_threadsafe(_alert_moved(services, alert_id), loop)

    def connected() -> None:  # what was queued while not listening is delivered now
        if gateway is not None:
            asyncio.run_coroutine_threadsafe(_resync(gateway), loop)

    channels = [COMMANDS_CHANNEL] if gateway is not None else []
    if gateway is not None or alerting is not None:
        channels.append(DEVICES_CHANNEL)
    if "api" in services.settings.role_set:
        channels.append(ALERT_CHANGES_CHANNEL)
    assert services.settings.database_url is not None
    listener = NoticeListener(services.settings.database_url, channels, deliver, connected)
    listener.start()

    async def close() -> None:
        await asyncio.to_thread(listener.close)

    services.closers.append(close)
    if gateway is not None:
        task = asyncio.create_task(_resync_forever(gateway), name="command-resync")

        async def stop_resync() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        services.closers.append(stop_resync)


async def _alert_moved(services: Services, alert_id: int) -> None:
    """Another API process acknowledged or resolved an alert: this one's stream shows it."""

    def read() -> StoredAlert | None:
        store = services.store_factory()
        try:
            return store.get_alert(alert_id)
        finally:
            store.close()

    try:
        alert = await asyncio.to_thread(read)
    except Exception as exc:
        log.warning("alert %d changed elsewhere, not read: %s", alert_id, exc)
        return
    if alert is not None and (services.alerting is not None or services.api_hub is not None):
        services.hub.publish_changes([alert])


def _notify(services: Services, channel: str, notice: dict[str, object]) -> None:
    """Tells the other processes (on a thread; from any thread)."""
    payload = json.dumps({**notice, "origin": services.origin})

    def notify() -> None:
        store = services.store_factory()
        try:
            store.notify(channel, payload)
        except Exception as exc:
            log.warning("notice on %s not sent: %s", channel, exc)
        finally:
            store.close()

    threading.Thread(target=notify, name="notify", daemon=True).start()


async def _resync(gateway: Gateway) -> None:
    """Delivers the queued commands of terminals this gateway holds (a notice may be lost)."""
    assert gateway.presence is not None  # on a shared database
    held_by = gateway.presence.gateway_id
    try:
        waiting = await gateway.store.call(lambda s: s.terminals_with_queued_commands(held_by))
    except Exception as exc:
        log.warning("cannot look for queued commands: %s", exc)
        return
    for terminal in waiting:
        gateway.commands.wake(terminal)


async def _resync_forever(gateway: Gateway) -> None:
    while True:
        await asyncio.sleep(RESYNC_S)
        await _resync(gateway)


def _device_notice(services: Services, terminal: str, reprovisioned: bool) -> None:
    """A device changed through another process's API: the detector's fleet and the gateway's
    registry follow (the registry from the stored record)."""
    if services.alerting is not None:
        services.alerting.devices_changed()
    gateway = services.gateway
    if gateway is None:
        return

    async def reload() -> None:
        device = await gateway.store.call(lambda s: s.get_device(terminal))
        if device is not None:
            _apply_device(gateway, device, reprovisioned)

    gateway.store.spawn(reload())


def _apply_device(gateway: Gateway, device: Device, reprovisioned: bool) -> None:
    """The gateway checks the new auth code at once; after a re-provisioning the old identity
    and code stop working and the replaced hardware's session is closed."""
    if not reprovisioned:
        gateway.registry.put(device)
        return
    gateway.registry.reprovision(device)
    session = gateway.sessions.get(device.terminal)
    if session is not None:  # the replaced hardware must register again
        session.close("re-provisioned")


async def _start_api(
    services: Services,
    router: CommandRouter,
    intervals: ReportIntervals,
    admin_key: str | None,
    rules: RuleBook | None = None,
) -> None:
    """The API on its own thread and loop: what it tells this process's gateway and detector
    is handed over to the main loop; other processes hear of device changes by notice."""
    settings, gateway, alerting = services.settings, services.gateway, services.alerting
    main_loop = asyncio.get_running_loop()
    stores = StoreAccess(services.store_factory)

    def changed_here(device: Device, reprovisioned: bool) -> None:
        if gateway is not None:
            _apply_device(gateway, device, reprovisioned)
        if alerting is not None:
            alerting.devices_changed()

    def tell_others(device: Device, reprovisioned: bool) -> None:
        if services.shared:
            notice = {"terminal": device.terminal, "reprovisioned": reprovisioned}
            _notify(services, DEVICES_CHANNEL, notice)

    def alert_moved(alert: StoredAlert) -> None:
        if services.shared:
            _notify(services, ALERT_CHANGES_CHANNEL, {"id": alert.id})

    def device_changed(device: Device) -> None:
        main_loop.call_soon_threadsafe(changed_here, device, False)
        tell_others(device, False)

    def device_reprovisioned(device: Device) -> None:
        main_loop.call_soon_threadsafe(changed_here, device, True)
        tell_others(device, True)

    def loan_changed(loan: Loan, action: CaseAction) -> None:
        main_loop.call_soon_threadsafe(intervals.loan_changed, loan, action)

    context = ApiContext(
        stores=stores,
        send_command=router.send,
        online=router.online,
        device_changed=device_changed,
        device_reprovisioned=device_reprovisioned,
        loan_changed=loan_changed,
        fixed_keys=_fixed_keys(settings, admin_key),
        max_body_bytes=settings.api_max_body_bytes,
        webhook_allow_private=settings.webhook_allow_private,
        long_answer_share=long_answer_share(settings, gateway is not None),
        map_options=MapOptions(
            tiles_url=settings.map_tiles_url,
            tiles_crs=Crs(settings.map_tiles_crs),
            tiles_attribution=settings.map_tiles_attribution,
            boundaries=packaged_outlines,
        ),
        rules=rules or load_rules(settings),
    )
    feed = None
    if alerting is not None:
        hub = alerting.hub
    else:  # no detector here: the stream follows the store
        hub = services.api_hub = AlertHub(max_queue=settings.alert_stream_queue)
        feed = AlertFeed(stores, hub)
    context.extra_routers.append(
        alerts_router(stores, hub, context.auth.viewer, act=context.auth.officer, moved=alert_moved)
    )
    api_host, api_port = settings.api_address

    def ready() -> Readiness:
        return readiness(services)

    api = ApiServer(
        create_app(registry=services.registry, ready=ready, context=context),
        api_host,
        api_port,
    )
    services.api_address = await api.start()
    services.closers.append(api.stop)
    if feed is not None:  # closed before the API closes the store access it reads through
        feed.start()
        services.closers.append(feed.close)


def long_answer_share(settings: Settings, beside_gateway: bool) -> float:
    """`LIENWATCH_API_LONG_ANSWER_SHARE`, else a quarter of a core beside a gateway."""
    if settings.api_long_answer_share is not None:
        return settings.api_long_answer_share
    return GATEWAY_SIDE_LONG_ANSWER_SHARE if beside_gateway else 1.0


def readiness(services: Services) -> Readiness:
    """/healthz: degraded (serving, with reasons) while waiting on the database or the disk;
    not serving only while stopping."""
    if services.stopping:
        return Readiness("stopping")
    reasons: list[str] = []
    gateway, journal = services.gateway, services.journal
    if journal is not None and journal.out_of_space:
        reasons.append("journal: no space left on its disk; reading paused until there is")
    elif gateway is not None and gateway.reading_paused:
        reasons.append("journal full: reading paused until the store catches up")
    if gateway is not None and gateway.store_error is not None:
        reasons.append(
            f"database unavailable, positions wait in the journal: {gateway.store_error}"
        )
    detector = services.alerting.detector if services.alerting is not None else None
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
