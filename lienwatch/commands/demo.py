"""`lienwatch demo`: the whole system on embedded defaults with a live scripted fleet.

Settings come from the environment like `serve`, with what the contract fixes for the demo:
auto-registration on, both listeners on 127.0.0.1 (the configured ports when free, else free
ones), SQLite unless LIENWATCH_DATABASE_URL is set, and the data dir LIENWATCH_DATA_DIR or a
fresh temporary directory removed on exit. The fleet's units, their cars and the demo fences
are written to the store before the services start, so the gateway and the engine know them
from the first report.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from lienwatch.commands import EXIT_RUNTIME, fail
from lienwatch.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from alerts.delivery.hub import Subscription
    from simulators.demo import DemoScript

PREFIX = "lienwatch demo:"


def say(text: str) -> None:
    print(f"{PREFIX} {text}", flush=True)


def port_or_any(port: int, host: str = "127.0.0.1") -> int:
    """`port` when it can be bound on `host` now, else 0 (the system picks a free one)."""
    if port == 0:
        return 0
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return 0
    return port


def demo_settings(base: Settings, data_dir: Path) -> Settings:
    """The environment's settings with the demo's fixed parts (contracts sections 1 and 7)."""
    updates: dict[str, object] = {
        "data_dir": data_dir,
        "auto_register": True,
        "detect": True,  # the demo is about the alerts
        "jt808_listen": f"127.0.0.1:{port_or_any(base.jt808_address[1])}",
        "api_listen": f"127.0.0.1:{port_or_any(base.api_address[1])}",
    }
    if "log_level" not in base.model_fields_set:
        updates["log_level"] = "WARNING"  # the terminal is for alerts; warnings still show
    return base.model_copy(update=updates)


def provision(settings: Settings, script: DemoScript) -> None:
    """Binds every unit to its car and stores the demo fences, through the Store interface."""
    from geofence import fences_to_geojson, load_fences
    from simulators.demo import demo_fences
    from store import Device, migrate, open_store
    from store.interface import FenceFeature

    fences = load_fences(demo_fences(script), name="demo fences")
    features = fences_to_geojson(fences)["features"]
    rows = [
        FenceFeature(f.id, str(f.kind), json.dumps(feature, ensure_ascii=False))
        for f, feature in zip(fences, features, strict=True)
    ]
    migrate(settings.database_url, settings.data_dir)
    store = open_store(settings.database_url, settings.data_dir)
    try:
        for terminal, vehicle_id in script.bindings().items():
            store.upsert_device(Device(terminal=terminal, vehicle_id=vehicle_id))
        store.put_fences(rows, time.time_ns() // 1_000_000)
    finally:
        store.close()


@dataclass
class Tally:
    alerts: Counter[str] = field(default_factory=Counter)


def alert_line(alert: dict[str, object]) -> str:
    """One printed line per alert: time, type, severity, vehicle, device and fence if any."""
    when = str(alert["time"]).replace("T", " ")
    line = f"{when}  {alert['type']!s:<18} {alert['severity']!s:<8} {alert['vehicle_id']}"
    line += f"  {alert['device_id']}"
    if alert.get("fence_id"):
        line += f"  {alert['fence_id']}"
    return line


def banner(script: DemoScript, gateway: tuple[str, int], api: tuple[str, int], key: str) -> None:
    base = f"http://{api[0]}:{api[1]}"
    say(f"JT808 gateway on {gateway[0]}:{gateway[1]}")
    say(f"API on {base} (reference: {base}/api/docs)")
    say(f"live map on {base}/map (paste the admin key when it asks)")
    say(f"admin API key: {key}")
    say(
        f"{len(script.cars)} cars, {len(script.trackers)} trackers around Hangzhou"
        f" (seed {script.seed}); scripted incidents:"
    )
    for incident in sorted(script.incidents, key=lambda i: i.onset_ms):
        offset_s = round((incident.onset_ms - script.t0_ms) / 1000)
        kind = incident.type.value
        print(f"  +{offset_s:>3} s  {kind:<18} {incident.vehicle_id}  {incident.story}", flush=True)
    say(f"try: curl -H 'Authorization: Bearer {key}' {base}/api/v1/alerts")
    say("alerts as they fire (time, type, severity, vehicle, device, fence); Ctrl-C stops")


async def _print_alerts(subscription: Subscription, tally: Tally) -> None:
    async for stored in subscription:
        alert = stored.to_json()
        tally.alerts[str(alert["type"])] += 1
        print(alert_line(alert), flush=True)


async def run_demo(settings: Settings, *, seed: int, cars: int, duration_s: float | None) -> None:
    """Provisions, starts the services and the fleet, prints alerts until told to stop."""
    from api.auth import new_key
    from lienwatch import runtime
    from simulators.demo import build_demo, demo_rules, make_devices
    from simulators.demo_run import fleet_totals, run_demo_fleet
    from simulators.wire import Clock

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.to_thread(provision, settings, build_demo(seed, cars))
        key = new_key()
        services = await runtime.start_services(settings, rules=demo_rules(), admin_key=key)
        tally = Tally()
        try:
            printer = asyncio.create_task(_print_alerts(services.hub.subscribe(), tally))
            clock = Clock.start()
            script = build_demo(seed, cars, clock.origin_ms)
            devices = make_devices(script)
            gateway, api = services.gateway_address, services.api_address
            assert gateway is not None  # demo runs every role
            assert api is not None
            banner(script, gateway, api, key)
            host, port = gateway
            fleet = asyncio.create_task(run_demo_fleet(devices, host, port, clock, stop))
            if duration_s is not None:
                loop.call_later(duration_s, stop.set)
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({stopped, fleet}, return_when=asyncio.FIRST_COMPLETED)
            say("stopping")
            stop.set()
            await fleet
        finally:
            await services.close()
        await asyncio.wait_for(printer, 10)
        ran_s = (clock.now_ms() - clock.origin_ms) / 1000
        totals = fleet_totals(devices)
        say(
            f"ran {ran_s:.0f} s: {totals.trackers} trackers sent {totals.reports} reports,"
            f" {totals.acknowledged} acknowledged"
        )
        counts = ", ".join(f"{name} {n}" for name, n in sorted(tally.alerts.items()))
        say(f"alerts: {sum(tally.alerts.values())}" + (f" ({counts})" if counts else ""))
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def demo(
    seed: int = typer.Option(1, "--seed", min=0, help="random seed: same seed, same fleet"),
    duration: float | None = typer.Option(
        None, "--duration", min=1.0, help="stop by itself after SECONDS (default: run until Ctrl-C)"
    ),
    cars: int = typer.Option(20, "--cars", min=1, max=1000, help="cars in the simulated fleet"),
) -> None:
    """The whole system on 127.0.0.1 with a simulated fleet in Hangzhou and scripted risk
    incidents; prints the API URL, an admin API key and alerts as they fire."""
    from lienwatch import runtime
    from store import StoreError

    try:
        base = load_settings()
    except SettingsError as exc:
        fail(str(exc))
    temporary = "data_dir" not in base.model_fields_set
    data_dir = Path(tempfile.mkdtemp(prefix="lienwatch-demo-")) if temporary else base.data_dir
    settings = demo_settings(base, data_dir)
    runtime.configure_logging(settings)
    runtime.install_event_loop_policy()
    if temporary:
        say(f"data in {data_dir} (temporary: removed on exit; set LIENWATCH_DATA_DIR to keep it)")
    else:
        say(f"data in {data_dir} (LIENWATCH_DATA_DIR: kept)")
    try:
        asyncio.run(run_demo(settings, seed=seed, cars=cars, duration_s=duration))
    except KeyboardInterrupt:  # before the signal handlers were in place
        say("stopped")
    except StoreError as exc:
        fail(f"store: {' '.join(str(exc).split())}", EXIT_RUNTIME)
    except OSError as exc:
        fail(f"cannot listen: {exc}", EXIT_RUNTIME)
    finally:
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)
            say(f"removed {data_dir}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
