"""The live alert side of one process: detector, recorder, fan-out sinks and their reloads.

A car whose loans are all settled, disposed or written off is no longer watched: its alerts are
dropped before they are stored (the set is read again with every reload). A car whose open loan
is overdue gets the `[loan_state.overdue.*]` thresholds of RULES.toml: the cars' loan states are
read with every reload too, and the fleet is refreshed when they changed.

Positions reach the `LiveDetector` from the gateway after each journal commit; alerts it raises
are stored by the `AlertRecorder` and then handed to every sink (the in-process hub behind the
WebSocket stream, Redis, MQTT, webhooks). Fences and device bindings are read from the store at
start and again whenever they change (the API tells at once; a watcher also polls, for changes
made by another process).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from alerts.delivery.fanout import Fanout
from alerts.delivery.hub import AlertHub
from alerts.delivery.mqtt_sink import MqttPublisher
from alerts.delivery.recorder import AlertRecorder
from alerts.delivery.redis_sink import RedisPublisher
from alerts.delivery.sink import AlertSink
from alerts.delivery.webhooks import WebhookDeliverer, WebhookPolicy
from alerts.model import Alert
from geofence import Fence, load_fences
from lienwatch.settings import Settings
from pipeline.alert_spool import AlertSpool
from pipeline.live import LiveDetector, fleet_from_devices
from pipeline.partitioned import PartitionedDetector
from pipeline.spill import BatchSpill
from pipeline.thresholds import RuleBook, parse_rules, unit_overrides
from store import Store, StoreError
from store.fencerows import feature_collection

STOP_WAIT_S = 1.0  # each of the detector and the sinks, when the process stops
ALERT_SPOOL_FILE = "alerts.spool"  # in the data directory, beside the journal
DETECTOR_SPILL_FILE = "detector.spill"  # batches the detector is too far behind to hold
# How often the live side reads every car's unit again when nothing told it of a change (a
# car moved between units).
UNITS_REFRESH_S = 30.0
log = logging.getLogger("lienwatch.alerting")


def load_rules(settings: Settings) -> RuleBook:
    """RULES.toml named by the settings, or the defaults."""
    path = settings.rules_file
    if path is None:
        return RuleBook()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read rules file: {exc}") from exc
    return parse_rules(data, str(path))


def stored_fences(store: Store) -> list[Fence]:
    return load_fences(feature_collection(store.list_fences()), name="stored fences")


def fence_scope(store: Store) -> Callable[[Alert], bool] | None:
    """Keeps a fence's alerts to the cars of its unit's subtree (a tenant's hotspot says
    nothing about another tenant's car); None while every fence is the platform's."""
    units = store.unit_paths()
    if not units.fences:
        return None
    return lambda alert: units.keeps(alert.fence_id, alert.vehicle_id, alert.device_id)


def car_unit_rules(
    store: Store, by_path: dict[str, str]
) -> dict[str, tuple[tuple[str, float], ...]]:
    """Car id -> the threshold overrides of its units (`by_path`: `Store.unit_rules()`),
    merged from the platform down (a deeper unit's win); empty while no unit has any."""
    if not by_path:
        return {}
    parsed = [(p, unit_overrides(json.loads(text), f"unit {p}")) for p, text in by_path.items()]
    units = sorted(parsed, key=lambda item: len(item[0]))
    merged: dict[str, tuple[tuple[str, float], ...]] = {}
    for vehicle_id, path in store.vehicle_paths().items():
        values: dict[str, float] = {}
        for unit_path, overrides in units:
            if path.startswith(unit_path):
                values.update(overrides)
        if values:
            merged[vehicle_id] = tuple(sorted(values.items()))
    return merged


def loan_state_names(store: Store) -> dict[str, str]:
    """vehicle_id -> the state of its open loan, as `Vehicle.loan_state` takes it."""
    return {vehicle: state.value for vehicle, state in store.loan_states().items()}


@dataclass(slots=True)
class Alerting:
    """The running alert side; `on_positions` goes to the gateway."""

    hub: AlertHub
    fanout: Fanout
    recorder: AlertRecorder | None
    # A detector beside a gateway, or the partitions of a detector process of its own.
    detector: LiveDetector | PartitionedDetector | None
    webhooks: WebhookDeliverer | None
    store_factory: Callable[[], Store]
    reload_interval_s: float
    fences_version: int = -1
    loan_states: dict[str, str] = field(default_factory=dict)
    borrowers: dict[str, str] = field(default_factory=dict)  # car -> its loan's borrower
    unit_rules: dict[str, tuple[tuple[str, float], ...]] = field(default_factory=dict)
    _rules_read: dict[str, str] = field(default_factory=dict)
    _watcher: asyncio.Task[None] | None = None
    _fleet_dirty: asyncio.Event = field(default_factory=asyncio.Event)
    _units_due: float = 0.0

    @property
    def on_positions(self) -> Callable[..., None] | None:
        detector = self.detector
        return detector.on_positions if isinstance(detector, LiveDetector) else None

    def reading_paused(self, paused: bool) -> None:
        """The gateway stopped (or resumed) reading: silence timers hold meanwhile."""
        if self.detector is not None:
            self.detector.hold_silences(paused)

    def raise_alerts(self, alerts: Sequence[Alert]) -> None:
        """Alerts the gateway raises itself (`device_conflict`): stored and fanned out by the
        detector's cycle like its own. A process without detection only logs them (the
        gateway did)."""
        for alert in alerts:
            log.warning("%s device=%s %s", alert.type.value, alert.device_id, alert.details)
        if self.detector is not None:
            self.detector.add_alerts(alerts)
        else:
            log.warning("%d gateway alerts not stored: detection is off here", len(alerts))

    def devices_changed(self) -> None:
        """A device was provisioned or rebound: refresh the fleet soon (once per burst)."""
        self._fleet_dirty.set()

    def loans_changed(self) -> None:
        """A loan changed state (the API or the overdue sweep): reload its car's thresholds
        soon, as for a device change."""
        self._fleet_dirty.set()

    def start_watching(self) -> None:
        if self.detector is not None:
            self._watcher = asyncio.create_task(self._watch(), name="alerting-reload")

    async def _watch(self) -> None:
        """Applies fence and device changes to the running engine."""
        detector = self.detector
        assert detector is not None
        failing = False
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._fleet_dirty.wait(), self.reload_interval_s)
            refresh_fleet = self._fleet_dirty.is_set()
            self._fleet_dirty.clear()
            try:
                await asyncio.to_thread(self._reload, detector, refresh_fleet)
            except Exception as exc:  # the store is down: the engine keeps what it has
                if not failing:  # once per outage, not every interval
                    log.warning("cannot reload fences and devices (retrying): %s", exc)
                failing = True
                if refresh_fleet:  # still to do once the store is back, an interval from now
                    await asyncio.sleep(self.reload_interval_s)
                    self._fleet_dirty.set()
            else:
                if failing:
                    log.info("fences and devices reloaded again")
                failing = False

    def _reload(self, detector: LiveDetector | PartitionedDetector, refresh_fleet: bool) -> None:
        store = self.store_factory()
        try:
            version = store.fences_version()
            fences_changed = version != self.fences_version
            if fences_changed:
                detector.set_fences(stored_fences(store))
                log.info("fences reloaded (version %d)", version)
                self.fences_version = version
            states = loan_state_names(store)
            now = time.monotonic()
            units_due = now >= self._units_due  # cars may have moved between units
            by_path = store.unit_rules()
            rules = self.unit_rules
            if by_path != self._rules_read or refresh_fleet or (by_path and units_due):
                rules = car_unit_rules(store, by_path)
                self._rules_read = by_path
            owes = store.loan_borrowers()
            if (
                refresh_fleet
                or states != self.loan_states
                or rules != self.unit_rules
                or owes != self.borrowers
            ):
                detector.set_fleet(fleet_from_devices(store.list_devices(), states, rules, owes))
                self.loan_states = states
                self.unit_rules = rules
                self.borrowers = owes
            if self.recorder is not None:
                self.recorder.muted_vehicles = frozenset(store.unmonitored_vehicle_ids())
                if fences_changed or refresh_fleet or units_due:
                    # every car's unit is read again at most every UNITS_REFRESH_S otherwise
                    self.recorder.keeps = fence_scope(store)
            if units_due:
                self._units_due = now + UNITS_REFRESH_S
        finally:
            store.close()

    async def close(self) -> None:
        """After the gateway stopped: the engine finishes what it was given, then the sinks."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self.detector is not None:  # unsaved alerts go to the spool on its last cycle
            await asyncio.to_thread(self.detector.stop, STOP_WAIT_S)
        try:  # closes every sink, the webhook thread included (its outbox is durable)
            await asyncio.wait_for(self.fanout.aclose(), STOP_WAIT_S)
        except TimeoutError:
            log.warning("alert sinks did not close within %.1f s; leaving them", STOP_WAIT_S)


class AlertingCollector(Collector):
    """The detector's and the sinks' counters on /metrics, read when scraped."""

    def __init__(self, alerting: Alerting, registry: CollectorRegistry) -> None:
        self._alerting = alerting
        registry.register(self)

    def collect(self) -> Iterator[Metric]:
        detector = self._alerting.detector
        if detector is not None:
            stats = detector.stats
            for name, value, doc in (
                ("positions", stats.positions, "Positions handed to the live detector"),
                ("dropped_positions", stats.dropped_positions, "Positions left out of detection"),
                (
                    "spilled_positions",
                    stats.spilled_positions,
                    "Positions parked on disk while the detector was behind",
                ),
                ("engine_errors", stats.errors, "Engine steps that failed (logged)"),
            ):
                yield CounterMetricFamily(f"lienwatch_detector_{name}", doc, value=value)
            raised = CounterMetricFamily(
                "lienwatch_alerts_raised", "Alerts raised by the live engine", labels=["type"]
            )
            for alert_type, count in sorted(stats.by_type.items()):
                raised.add_metric([alert_type], count)
            yield raised
            yield GaugeMetricFamily(
                "lienwatch_alerts_unsaved", "Alerts waiting for the store", value=stats.unsaved
            )
        delivered = CounterMetricFamily(
            "lienwatch_alert_deliveries", "Alerts delivered, by sink", labels=["sink"]
        )
        pending = GaugeMetricFamily(
            "lienwatch_alert_sink_pending", "Alerts waiting for a sink", labels=["sink"]
        )
        failing = GaugeMetricFamily(
            "lienwatch_alert_sink_failing", "1 while a sink is failing", labels=["sink"]
        )
        for status in self._alerting.fanout.status():
            delivered.add_metric([status.name], status.delivered)
            pending.add_metric([status.name], status.pending)
            failing.add_metric([status.name], 1 if status.failing else 0)
        yield from (delivered, pending, failing)


def start_alerting(
    settings: Settings,
    store_factory: Callable[[], Store],
    rules: RuleBook | None = None,
    *,
    partitioned: bool = False,
) -> Alerting:
    """Builds and starts the sinks and, unless detection is off, the live detector (with
    `partitioned`, the engines of the partitions a detector process of its own will own, run
    by `lienwatch.partitioned_feed`). Runs on the event loop (the fan-out's tasks live there)
    and reads the store once: call it at start-up."""
    hub = AlertHub(max_queue=settings.alert_stream_queue)
    sinks: list[AlertSink] = [hub]
    if settings.redis_url:
        sinks.append(RedisPublisher(settings.redis_url))
    if settings.mqtt_url:
        sinks.append(MqttPublisher(settings.mqtt_url))
    webhooks = None
    if settings.webhooks or settings.detect:  # units register receivers through the API
        webhooks = WebhookDeliverer(
            store_factory,
            WebhookPolicy(
                secret=settings.webhook_secret,
                max_attempts=settings.webhook_max_attempts,
                timeout_s=settings.webhook_timeout_s,
                allow_private=settings.webhook_allow_private,
            ),
            outage_errors=(StoreError,),
        )
        webhooks.start()
        sinks.append(webhooks)
    fanout = Fanout(sinks)
    fanout.start()
    alerting = Alerting(
        hub, fanout, None, None, webhooks, store_factory, settings.reload_interval_s
    )
    if settings.detect:
        recorder = AlertRecorder(
            store_factory, fanout.publish_threadsafe, webhook_urls=settings.webhooks
        )
        store = store_factory()
        try:
            alerting.loan_states = loan_state_names(store)
            alerting._rules_read = store.unit_rules()
            alerting.unit_rules = car_unit_rules(store, alerting._rules_read)
            alerting.borrowers = store.loan_borrowers()
            fleet = fleet_from_devices(
                store.list_devices(), alerting.loan_states, alerting.unit_rules, alerting.borrowers
            )
            fences = stored_fences(store)
            alerting.fences_version = store.fences_version()
            recorder.muted_vehicles = frozenset(store.unmonitored_vehicle_ids())
            recorder.keeps = fence_scope(store)
        finally:
            store.close()
        alerting.recorder = recorder
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if partitioned:  # the store is their backlog and checkpoints them: no spool, no spill
            alerting.detector = PartitionedDetector(
                recorder,
                partitions=settings.detector_partitions,
                fleet=fleet,
                fences=fences,
                rules=rules or load_rules(settings),
            )
            return alerting
        detector = LiveDetector(
            recorder,
            fleet=fleet,
            fences=fences,
            rules=rules or load_rules(settings),
            spool=AlertSpool(settings.data_dir / ALERT_SPOOL_FILE),
            spill=BatchSpill(settings.data_dir / DETECTOR_SPILL_FILE),
        )
        detector.start()
        alerting.detector = detector
    return alerting
