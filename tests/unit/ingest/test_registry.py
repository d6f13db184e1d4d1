"""The registry's identity decision (contracts section 8) and the takeover-storm watch."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from alerts.model import AlertType
from ingest.registry import (
    REGISTERED,
    TERMINAL_TAKEN,
    UNKNOWN_TERMINAL,
    Claim,
    DeviceRegistry,
    Refusal,
    TakeoverWatch,
    peer_address,
    recorded_claim,
)
from store import Device

T = "013900000001"
REAL = Claim("LW", "T1", "ID1")
OTHER = Claim("LW", "T1", "ID2")
NOW = 1_760_000_000_000


def test_the_first_registration_records_the_identity_and_issues_a_code() -> None:
    registry = DeviceRegistry([], auto_register=True)
    first = registry.register(T, 2013, REAL, NOW)
    assert first.result == REGISTERED and first.refusal is None
    assert first.device is not None and len(first.auth_code) == 16
    assert (first.device.maker_id, first.device.model, first.device.terminal_id) == (
        "LW",
        "T1",
        "ID1",
    )
    assert first.device.auth_code == first.auth_code and first.device.registered_ms == NOW


def test_a_matching_registration_gets_the_code_it_has_and_stores_nothing() -> None:
    registry = DeviceRegistry([], auto_register=True)
    code = registry.register(T, 2013, REAL, NOW).auth_code
    again = registry.register(T, 2013, REAL, NOW + 1000)
    assert (again.result, again.auth_code, again.device) == (REGISTERED, code, None)
    assert registry.authenticate(T, code).ok


def test_another_identity_is_refused_and_changes_nothing() -> None:
    registry = DeviceRegistry([], auto_register=True)
    code = registry.register(T, 2013, REAL, NOW).auth_code
    before = registry.get(T)
    for claim in (OTHER, Claim("", "", ""), Claim("LW", "T2", "ID1"), Claim("lw", "T1", "ID1")):
        refused = registry.register(T, 2019, claim, NOW + 5000)
        assert (refused.result, refused.auth_code, refused.device) == (TERMINAL_TAKEN, "", None)
        assert refused.refusal is Refusal.IDENTITY_DIFFERS
    assert registry.get(T) == before
    assert registry.authenticate(T, code).ok


def test_an_unknown_terminal_is_refused_without_auto_registration() -> None:
    registry = DeviceRegistry([], auto_register=False)
    refused = registry.register(T, 2013, REAL, NOW)
    assert (refused.result, refused.refusal) == (UNKNOWN_TERMINAL, Refusal.UNKNOWN_TERMINAL)
    assert T not in registry


def test_a_provisioned_terminal_takes_its_identity_from_its_first_registration() -> None:
    # Provisioned through the API with a model's fixed code: the code stays, identity is taken.
    registry = DeviceRegistry([Device(T, auth_code="123456", vehicle_id="V1")], auto_register=False)
    first = registry.register(T, 2013, REAL, NOW)
    assert (first.result, first.auth_code) == (REGISTERED, "123456")
    assert first.device == Device(T, 2013, "123456", NOW, None, "V1", "LW", "T1", "ID1", None)
    assert registry.register(T, 2013, OTHER, NOW).result == TERMINAL_TAKEN
    # Provisioned without a code: the first registration issues one.
    bare = DeviceRegistry([Device(T)], auto_register=False)
    issued = bare.register(T, 2013, REAL, NOW)
    assert issued.result == REGISTERED and len(issued.auth_code) == 16


def test_a_deregistered_terminal_gets_a_new_code_on_registering_again() -> None:
    registry = DeviceRegistry([], auto_register=True)
    code = registry.register(T, 2013, REAL, NOW).auth_code
    registry.deregister(T)
    assert not registry.authenticate(T, code).ok
    again = registry.register(T, 2013, REAL, NOW + 1)
    assert again.result == REGISTERED and again.auth_code != code


def test_the_imei_of_the_first_2019_authentication_is_recorded_and_then_required() -> None:
    registry = DeviceRegistry([], auto_register=True)
    code = registry.register(T, 2019, REAL, NOW).auth_code
    first = registry.authenticate(T, code, "860000000000001")
    assert first.ok and first.device is not None and first.device.imei == "860000000000001"
    assert registry.authenticate(T, code, "860000000000001") == type(first)(True)
    for imei in ("860000000000002", ""):  # another IMEI, or a 2013 body without one
        refused = registry.authenticate(T, code, imei)
        assert (refused.ok, refused.refusal) == (False, Refusal.IMEI_DIFFERS)
    bad = registry.authenticate(T, "nope", "860000000000001")
    assert (bad.ok, bad.refusal) == (False, Refusal.BAD_CODE)
    assert registry.authenticate("013900000009", code).refusal is Refusal.BAD_CODE


def test_put_keeps_an_identity_recorded_in_memory_and_reprovision_replaces_it() -> None:
    registry = DeviceRegistry([], auto_register=True)
    code = registry.register(T, 2013, REAL, NOW).auth_code
    # The API rebinds the car before the gateway's write of the identity reached the store.
    registry.put(Device(T, auth_code=code, vehicle_id="V9"))
    assert registry.register(T, 2013, OTHER, NOW).result == TERMINAL_TAKEN
    known = registry.get(T)
    assert known is not None and known.vehicle_id == "V9" and known.terminal_id == "ID1"
    # Replaced hardware: the admin clears identity and code; the new hardware registers.
    registry.reprovision(Device(T, vehicle_id="V9"))
    assert not registry.authenticate(T, code).ok
    fresh = registry.register(T, 2013, OTHER, NOW + 1)
    assert fresh.result == REGISTERED and fresh.auth_code != code
    assert registry.register(T, 2013, REAL, NOW + 2).result == TERMINAL_TAKEN


def test_peer_addresses_read_as_host_and_port() -> None:
    assert peer_address(("127.0.0.1", 5000)) == "127.0.0.1:5000"
    assert peer_address(("::1", 5000, 0, 0)) == "[::1]:5000"
    assert peer_address("mqtt:013900000001") == "mqtt:013900000001"
    assert peer_address(None) == "None"


# -- takeover storms ---------------------------------------------------------------------------


def alternate(watch: TakeoverWatch, n: int, start_ms: int, step_ms: int, idle_s: float = 1.0):
    peers = ("10.0.0.1:1000", "10.0.0.2:2000")
    return [
        watch.takeover(
            T,
            old_peer=peers[i % 2],
            old_idle_s=idle_s,
            new_peer=peers[(i + 1) % 2],
            now_ms=start_ms + i * step_ms,
        )
        for i in range(n)
    ]


def test_a_storm_gives_one_conflict_with_both_peers_and_a_later_storm_another() -> None:
    watch = TakeoverWatch(takeovers=4, window_ms=300_000)
    found = alternate(watch, 20, NOW, 5_000)
    raised = [c for c in found if c is not None]
    assert len(raised) == 1 and found[3] is raised[0]
    assert set(raised[0].peers) == {"10.0.0.1:1000", "10.0.0.2:2000"}
    assert (raised[0].takeovers, raised[0].since_ms) == (4, NOW)
    # Quiet for a whole window: the incident is over, the next storm is a new one.
    later = NOW + 19 * 5_000 + 300_001
    again = [c for c in alternate(watch, 4, later, 1_000) if c is not None]
    assert len(again) == 1 and again[0].since_ms == later


def test_reconnects_replacing_quiet_sessions_or_spread_out_raise_nothing() -> None:
    quiet = TakeoverWatch(takeovers=4, window_ms=300_000, live_s=60)
    assert alternate(quiet, 30, NOW, 1_000, idle_s=90) == [None] * 30
    spread = TakeoverWatch(takeovers=4, window_ms=300_000)
    assert alternate(spread, 30, NOW, 100_001) == [None] * 30


def test_the_alert_names_the_vehicle_and_both_peers() -> None:
    registry = DeviceRegistry([Device(T, vehicle_id="CAR-1")], auto_register=False)
    alerts = [
        registry.takeover(
            T, old_peer=f"p{i % 2}", old_idle_s=0, new_peer=f"p{(i + 1) % 2}", now_ms=NOW + i
        )
        for i in range(6)
    ]
    raised = [a for a in alerts if a is not None]
    assert len(raised) == 1
    alert = raised[0]
    assert (alert.type, alert.device_id, alert.vehicle_id, alert.time_ms) == (
        AlertType.DEVICE_CONFLICT,
        T,
        "CAR-1",
        NOW,
    )
    assert sorted(alert.details["peers"]) == ["p0", "p1"] and alert.severity == "high"


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["A", "B"]),  # terminal
            st.integers(0, 150_000),  # ms since the previous takeover
            st.floats(0, 120),  # idle seconds of the replaced session
        ),
        max_size=60,
    )
)
def test_every_storm_gives_exactly_one_conflict(steps: list[tuple[str, int, float]]) -> None:
    """Against a plain reference: an incident is a run of counted takeovers (replaced session
    live) with no gap over the window; it gives one conflict, at its `takeovers`-th takeover
    within one window, and none when it never gets there."""
    window, threshold = 100_000, 3
    watch = TakeoverWatch(takeovers=threshold, window_ms=window, live_s=60)
    counted: dict[str, list[int]] = {}  # counted takeover times of the current incident
    raised: dict[str, bool] = {}  # whether the current incident gave its conflict
    now = NOW
    for terminal, gap, idle in steps:
        now += gap
        conflict = watch.takeover(terminal, old_peer="x", old_idle_s=idle, new_peer="y", now_ms=now)
        if idle > 60:
            assert conflict is None
            continue
        times = counted.setdefault(terminal, [])
        if times and now - times[-1] > window:  # the incident ended: a new one begins
            times.clear()
            raised[terminal] = False
        times.append(now)
        recent = [t for t in times if now - t <= window]
        expect = not raised.get(terminal, False) and len(recent) >= threshold
        assert (conflict is not None) == expect
        if conflict is not None:
            raised[terminal] = True
            assert (conflict.terminal, conflict.peers) == (terminal, ("x", "y"))
            assert (conflict.takeovers, conflict.since_ms) == (len(recent), recent[0])
        assert len(watch) <= 2


def test_registry_state_after_refusals_is_unchanged_for_any_claim() -> None:
    registry = DeviceRegistry([], auto_register=True)
    registry.register(T, 2013, REAL, NOW)
    snapshot = replace(registry.get(T) or Device(T))
    for maker in ("", "LW", "X"):
        for model in ("", "T1"):
            for tid in ("", "ID1", "ID9"):
                claim = Claim(maker, model, tid)
                outcome = registry.register(T, 2013, claim, NOW)
                assert (outcome.result == REGISTERED) == (claim == REAL)
    assert registry.get(T) == snapshot


CLAIMS = [REAL, OTHER, Claim("", "", "")]
IMEIS = ["", "860000000000001", "860000000000002"]


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("register"), st.sampled_from(CLAIMS), st.sampled_from([2013, 2019])),
            st.tuples(st.just("auth"), st.booleans(), st.sampled_from(IMEIS)),
            st.tuples(st.just("deregister"), st.none(), st.none()),
        ),
        max_size=30,
    ),
    st.booleans(),
)
def test_only_the_first_identity_ever_gets_a_code(steps: list[tuple], provisioned: bool) -> None:
    """Whatever the order of registrations, authentications and deregistrations: the first
    claim is the only one answered 0, a refusal changes nothing, the code changes only when
    there was none, and the first IMEI authenticated is the only one accepted after it."""
    registry = DeviceRegistry([Device(T)] if provisioned else [], auto_register=True)
    first: Claim | None = None
    first_imei: str | None = None
    code = ""
    for kind, arg, extra in steps:
        before = registry.get(T)
        if kind == "register":
            outcome = registry.register(T, extra, arg, NOW)
            first = first or arg
            assert (outcome.result == REGISTERED) == (arg == first)
            if outcome.result != REGISTERED:
                assert registry.get(T) == before and outcome.device is None
                continue
            assert outcome.auth_code == code or not code
            code = outcome.auth_code
        elif kind == "auth":
            outcome = registry.authenticate(T, code if arg else "wrong", extra)
            right_code = arg and bool(code)
            imei_fits = first_imei is None or extra == first_imei
            assert outcome.ok == (right_code and imei_fits)
            if outcome.ok and first_imei is None and extra:
                first_imei = extra
            if not outcome.ok:
                assert registry.get(T) == before
        else:
            registry.deregister(T)
            code = ""
    known = registry.get(T)
    if first is not None:
        assert known is not None and recorded_claim(known) == first
        assert known.imei == first_imei


@given(st.text(min_size=1, max_size=20), st.text(max_size=20), st.text(max_size=20))
def test_gateways_sharing_a_code_key_issue_one_code_for_one_claim(
    maker: str, model: str, terminal_id: str
) -> None:
    """Two gateways auto-registering one new terminal in the same instant (an MQTT group
    dealing its 0x0100 retries to both) give it the same code; another claim gets another."""
    key = bytes(range(32))
    claim = Claim(maker, model, terminal_id)
    a = DeviceRegistry([], auto_register=True, code_key=key).register(T, 2013, claim, NOW)
    b = DeviceRegistry([], auto_register=True, code_key=key).register(T, 2019, claim, NOW + 5)
    assert a.auth_code == b.auth_code and len(a.auth_code) == 16
    other = Claim(maker + "x", model, terminal_id)
    c = DeviceRegistry([], auto_register=True, code_key=key).register(T, 2013, other, NOW)
    assert c.auth_code != a.auth_code
    # Another deployment's key, or another terminal, gives another code.
    d = DeviceRegistry([], auto_register=True, code_key=bytes(32)).register(T, 2013, claim, NOW)
    e = DeviceRegistry([], auto_register=True, code_key=key).register(T + "1", 2013, claim, NOW)
    assert a.auth_code not in (d.auth_code, e.auth_code)


def test_without_a_code_key_codes_are_random() -> None:
    first = DeviceRegistry([], auto_register=True).register(T, 2013, REAL, NOW)
    second = DeviceRegistry([], auto_register=True).register(T, 2013, REAL, NOW)
    assert first.auth_code != second.auth_code
