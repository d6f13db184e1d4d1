"""Every key sees exactly its unit's subtree, through every route (contracts section 6a).

Random organization trees (tenants, then branches and dealers under any unit), a viewer and an
admin key in each unit and, in each unit, a car with a device (and a position), a loan, a fence,
an alert and a command. For every key: each list, followed page by page, holds exactly the
resources of its subtree; each item of its subtree reads, each other one answers 404
`not_found` as a missing id does; and every mutating route aimed at a resource outside the
subtree answers 404 and changes nothing (the platform admin's view is the same after).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.model import Alert, AlertType
from ingest.commands import CommandOutcome
from ingest.jt808.messages import Message, TerminalGeneralResponse
from store import CommandState
from tests.support.api import ApiUnderTest, api_under_test

T0_MS = 1_709_280_000_000
_runs = itertools.count(1)
ALL_PATHS: dict[int, str] = {}  # every unit the module's examples made


async def _acked(terminal: str, message: Message) -> CommandOutcome:
    return CommandOutcome(CommandState.ACKED, TerminalGeneralResponse(1, int(message.MSG_ID), 0))


@dataclass(repr=False)
class Served:
    """The module's API (a short repr: hypothesis prints the arguments of a failure)."""

    api: ApiUnderTest

    def __repr__(self) -> str:
        return "Served(api)"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir: Path = tmp_path_factory.mktemp("orgs")
    for api in api_under_test(None, data_dir, send_command=_acked, with_alerts=True):
        api.context.webhook_allow_private = True  # its receivers' URLs are on 127.0.0.1
        yield Served(api)


@dataclass
class World:
    """One example's units and resources, by unit id."""

    run: int
    paths: dict[int, str] = field(default_factory=dict)
    viewers: dict[int, dict[str, str]] = field(default_factory=dict)
    admins: dict[int, dict[str, str]] = field(default_factory=dict)
    key_names: dict[int, list[str]] = field(default_factory=dict)
    terminal: dict[int, str] = field(default_factory=dict)
    vehicle: dict[int, str] = field(default_factory=dict)
    loan: dict[int, str] = field(default_factory=dict)
    fence: dict[int, str] = field(default_factory=dict)
    alert: dict[int, int] = field(default_factory=dict)
    command: dict[int, int] = field(default_factory=dict)
    approval: dict[int, int] = field(default_factory=dict)
    borrower: dict[int, int] = field(default_factory=dict)
    webhook: dict[int, int] = field(default_factory=dict)
    candidate: dict[int, int] = field(default_factory=dict)  # a place the unit's car gathers at
    backtest: dict[int, int] = field(default_factory=dict)  # a backtest the unit's admin ran

    def tenant(self, unit: int) -> int:
        return int(self.paths[unit].split("/")[2])

    def under(self, unit: int) -> set[int]:
        return {u for u, p in self.paths.items() if p.startswith(self.paths[unit])}


def ok(answer: Any, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


def build(api: ApiUnderTest, tenants: int, extra: list[tuple[int, str]]) -> World:
    world = World(next(_runs))
    post, root = api.client.post, api.admin
    units: list[int] = []
    for t in range(tenants):
        made = ok(post("/api/v1/orgs", json={"name": f"t{t}", "kind": "tenant"}, headers=root), 201)
        assert made["parent"] is None
        units.append(made["id"])
        world.paths[made["id"]] = f"/1/{made['id']}/"
    for pick, kind in extra:
        parent = units[pick % len(units)]
        body = {"name": f"{kind}{len(units)}", "kind": kind, "parent": parent}
        made = ok(post("/api/v1/orgs", json=body, headers=root), 201)
        assert made["parent"] == parent
        units.append(made["id"])
        world.paths[made["id"]] = f"{world.paths[parent]}{made['id']}/"
    store = api.store()
    try:
        for unit in units:
            tag = f"{world.run}-{unit}"
            for role, keys in (("viewer", world.viewers), ("admin", world.admins)):
                name = f"{role[0]}{tag}"
                body = {"name": name, "role": role, "org": unit}
                made = ok(post("/api/v1/keys", json=body, headers=root), 201)
                assert made["org"] == unit
                keys[unit] = api.auth(made["key"])
                world.key_names.setdefault(unit, []).append(name)
            terminal = f"{world.run:06d}{unit:06d}"
            vehicle, loan, fence = f"V{tag}", f"L{tag}", f"F{tag}"
            body = {"vehicle_id": vehicle, "org": unit}
            device = ok(api.client.put(f"/api/v1/devices/{terminal}", json=body, headers=root), 201)
            assert device["org"] == unit
            api.write(terminal, [{"time_ms": T0_MS, "lon": 121.0, "lat": 31.0}])
            new_loan = {
                "loan_no": loan,
                "borrower_name": "B",
                "vehicle_id": vehicle,
                "principal": "1000.00",
                "start_date": "2024-01-15",
                "due_day": 15,
            }  # no `org`: the car's unit
            assert ok(post("/api/v1/loans", json=new_loan, headers=root), 201)["org"] == unit
            feature = {
                "type": "Feature",
                "properties": {"id": fence, "kind": "hotspot", "radius_m": 100, "org": unit},
                "geometry": {"type": "Point", "coordinates": [121.0, 31.0]},
            }
            ok(post("/api/v1/fences", json=feature, headers=root), 201)
            added = store.add_alerts([Alert(AlertType.POWER_CUT, terminal, vehicle, T0_MS)], T0_MS)
            assert added.stored[0].org == unit  # the car's unit
            sent = post(
                f"/api/v1/devices/{terminal}/commands",
                json={"kind": "query_location"},
                headers=root,
            )
            world.terminal[unit], world.vehicle[unit] = terminal, vehicle
            world.loan[unit], world.fence[unit] = loan, fence
            world.alert[unit], world.command[unit] = added.stored[0].id, ok(sent)["id"]
            reset = {"kind": "terminal_control", "command": "factory_reset"}
            asked = post(f"/api/v1/devices/{terminal}/commands", json=reset, headers=root)
            world.approval[unit] = ok(asked, 202)["id"]
            hook = {"url": f"http://127.0.0.1:9/{tag}", "org": unit}
            world.webhook[unit] = ok(post("/api/v1/webhooks", json=hook, headers=root), 201)["id"]
            person = {"name": "B", "phone": "13812345678", "org": unit}
            world.borrower[unit] = ok(post("/api/v1/borrowers", json=person, headers=root), 201)[
                "id"
            ]
            place = {
                "lon": 121.0,
                "lat": 31.0,
                "radius_m": 150,
                "borrowers": 1,
                "visits": [{"vehicle_id": vehicle, "device_id": terminal, "borrower": vehicle}],
            }
            gathered = Alert(AlertType.GATHERING, terminal, vehicle, T0_MS, details=place)
            (stored,) = store.add_alerts([gathered], T0_MS).stored
            (made,) = [
                c for c in store.spot_candidates_in(None, limit=100_000) if c.alert_id == stored.id
            ]
            assert made.org == world.tenant(unit)  # the tenant of every car of its evidence
            world.candidate[unit] = made.id
            span = {"since": "2024-03-01T00:00:00Z", "until": "2024-03-01T01:00:00Z"}
            ran = ok(post("/api/v1/backtests", json=span, headers=world.admins[unit]), 202)
            assert ran["org"] == unit
            world.backtest[unit] = ran["id"]
            car = {"plate": f"P{tag}", "make": "VW"}
            assert (
                ok(api.client.put(f"/api/v1/vehicles/{vehicle}", json=car, headers=root))["org"]
                == unit
            )
    finally:
        store.close()
    ALL_PATHS.update(world.paths)
    return world


def pages(api: ApiUnderTest, key: dict[str, str], url: str, cursor: str) -> list[dict[str, Any]]:
    """Every item of a list read two at a time (`after` or `after_id` paging)."""
    found: list[dict[str, Any]] = []
    after: Any = "" if cursor == "after" else 0
    field = url.rsplit("/", 1)[-1]  # a page object holds its items under the list's name
    while True:
        answer = ok(api.client.get(url, params={cursor: after, "limit": 2}, headers=key))
        items = answer[field] if isinstance(answer, dict) else answer
        found += items
        if len(items) < 2:
            return found
        after = answer["next"] if cursor == "after" else items[-1]["id"]


def check_lists(api: ApiUnderTest, world: World, unit: int, key: dict[str, str]) -> None:
    seen = world.under(unit)
    mine = set(world.paths)

    def assert_exact(orgs: list[int], values: set[Any], expected: dict[int, Any]) -> None:
        # Nothing from outside the subtree (units of any example), exactly this example's inside.
        assert all(ALL_PATHS[o].startswith(world.paths[unit]) for o in orgs)
        assert values & set(expected.values()) == {expected[u] for u in seen}

    orgs = ok(api.client.get("/api/v1/orgs", headers=key))["orgs"]
    assert {o["id"] for o in orgs} & mine == seen
    devices = pages(api, key, "/api/v1/devices", "after")
    assert_exact([d["org"] for d in devices], {d["terminal"] for d in devices}, world.terminal)
    loans = pages(api, key, "/api/v1/loans", "after_id")
    assert_exact([x["org"] for x in loans], {x["loan_no"] for x in loans}, world.loan)
    alerts = pages(api, key, "/api/v1/alerts", "after_id")
    assert_exact([a["org"] for a in alerts], {a["id"] for a in alerts}, world.alert)
    borrowers = pages(api, key, "/api/v1/borrowers", "after_id")
    assert_exact([b["org"] for b in borrowers], {b["id"] for b in borrowers}, world.borrower)
    assert all(b["phone"] == "138****5678" for b in borrowers)  # a viewer's key: masked
    cars = pages(api, key, "/api/v1/vehicles", "after")
    assert_exact([c["org"] for c in cars], {c["vehicle_id"] for c in cars}, world.vehicle)
    approvals = pages(api, key, "/api/v1/approvals", "after_id")
    assert_exact([a["org"] for a in approvals], {a["id"] for a in approvals}, world.approval)
    spots = pages(api, key, "/api/v1/spot-candidates", "after_id")
    assert all(ALL_PATHS[c["org"]].startswith(world.paths[unit]) for c in spots)
    assert {c["id"] for c in spots} & set(world.candidate.values()) == {
        world.candidate[u] for u in world.paths if world.tenant(u) in seen
    }
    fences = ok(api.client.get("/api/v1/fences", headers=key))["features"]
    assert_exact(
        [f["properties"]["org"] for f in fences],
        {f["properties"]["id"] for f in fences},
        world.fence,
    )


def check_items(api: ApiUnderTest, world: World, unit: int, key: dict[str, str]) -> None:
    seen = world.under(unit)
    for other in world.paths:
        t, v, n = world.terminal[other], world.vehicle[other], world.loan[other]
        urls = [
            f"/api/v1/orgs/{other}",
            f"/api/v1/orgs/{other}/rules",
            f"/api/v1/devices/{t}",
            f"/api/v1/devices/{t}/latest",
            f"/api/v1/devices/{t}/track?from=2024-01-01T00:00:00Z",
            f"/api/v1/devices/{t}/commands",
            f"/api/v1/vehicles/{v}",
            f"/api/v1/vehicles/{v}/places",
            f"/api/v1/vehicles/{v}/stops?from=2024-01-01T00:00:00Z",
            f"/api/v1/vehicles/{v}/trips?from=2024-01-01T00:00:00Z",
            f"/api/v1/vehicles/{v}/risk",
            f"/api/v1/loans/{n}",
            f"/api/v1/loans/{n}/actions",
            f"/api/v1/fences/{world.fence[other]}",
            f"/api/v1/alerts/{world.alert[other]}",
            f"/api/v1/commands/{world.command[other]}",
            f"/api/v1/approvals/{world.approval[other]}",
            f"/api/v1/borrowers/{world.borrower[other]}",
        ]
        for url in urls:
            answer = api.client.get(url, headers=key)
            if other in seen:
                assert answer.status_code == 200, (url, answer.text)
            else:
                assert answer.status_code == 404, (url, answer.text)
                assert answer.json()["error"] == "not_found", (url, answer.text)
        url = f"/api/v1/spot-candidates/{world.candidate[other]}"
        answer = api.client.get(url, headers=key)
        if world.tenant(other) in seen:
            assert answer.status_code == 200, (url, answer.text)
        else:
            assert answer.status_code == 404, (url, answer.text)
            assert answer.json()["error"] == "not_found", (url, answer.text)


def probe_mutations(api: ApiUnderTest, world: World, unit: int, key: dict[str, str]) -> None:
    seen = world.under(unit)
    client = api.client
    jobs = pages(api, key, "/api/v1/backtests", "after_id")  # an admin's key (officer and up)
    assert all(ALL_PATHS[j["org"]].startswith(world.paths[unit]) for j in jobs)
    assert {j["id"] for j in jobs} & set(world.backtest.values()) == {
        world.backtest[u] for u in seen
    }
    for other in world.paths:
        answer = client.get(f"/api/v1/backtests/{world.backtest[other]}", headers=key)
        assert answer.status_code == (200 if other in seen else 404), answer.text
    hooks = ok(client.get("/api/v1/webhooks", headers=key))["webhooks"]
    assert all(ALL_PATHS[h["org"]].startswith(world.paths[unit]) for h in hooks)
    assert {h["id"] for h in hooks} & set(world.webhook.values()) == {
        world.webhook[u] for u in seen
    }
    audit = pages(api, key, "/api/v1/audit", "after_id")
    assert all(ALL_PATHS.get(e["org"], "/1/").startswith(world.paths[unit]) for e in audit)
    for other in world.paths:
        if other in seen:
            continue
        t, v, n = world.terminal[other], world.vehicle[other], world.loan[other]
        fence = world.fence[other]
        feature = {
            "type": "Feature",
            "properties": {"id": fence, "kind": "hotspot", "radius_m": 50},
            "geometry": {"type": "Point", "coordinates": [0.0, 0.0]},
        }
        loan = {
            "loan_no": n,
            "borrower_name": "X",
            "vehicle_id": f"new-{n}",
            "principal": "1.00",
            "start_date": "2024-01-15",
            "due_day": 1,
        }
        attempts = [
            ("PUT", f"/api/v1/devices/{t}", {"vehicle_id": "stolen"}),
            ("PUT", f"/api/v1/devices/{world.terminal[unit]}", {"vehicle_id": v}),
            ("POST", f"/api/v1/devices/{t}/reprovision", {}),
            ("POST", f"/api/v1/devices/{t}/commands", {"kind": "query_location"}),
            ("POST", f"/api/v1/devices/{t}/commands", {"kind": "terminal_control", "command": 5}),
            ("DELETE", f"/api/v1/fences/{fence}", None),
            ("POST", "/api/v1/fences", feature),
            ("POST", "/api/v1/loans", loan),
            ("POST", f"/api/v1/loans/{n}/payments", {"installments": 1}),
            ("POST", f"/api/v1/loans/{n}/transition", {"to": "overdue"}),
            ("POST", f"/api/v1/loans/{n}/actions", {"stage": "phone", "channel": "phone",
                                                  "outcome": "no_answer"}),
            ("POST", f"/api/v1/alerts/{world.alert[other]}/acknowledge", None),
            ("POST", f"/api/v1/alerts/{world.alert[other]}/resolve", None),
            ("DELETE", f"/api/v1/keys/{world.key_names[other][0]}", None),
            ("POST", "/api/v1/keys", {"name": world.key_names[other][0], "role": "viewer"}),
            ("POST", "/api/v1/keys", {"name": f"x{world.run}-{unit}", "role": "viewer",
                                      "org": other}),
            ("POST", f"/api/v1/vehicles/{v}/move", {"org": unit}),
            ("POST", f"/api/v1/vehicles/{world.vehicle[unit]}/move", {"org": other}),
            ("POST", "/api/v1/orgs", {"name": "x", "kind": "branch", "parent": other}),
            ("PUT", f"/api/v1/orgs/{other}/rules", {"overspeed": {"speed_kmh": 1}}),
            ("POST", f"/api/v1/approvals/{world.approval[other]}/approve", None),
            ("POST", f"/api/v1/approvals/{world.approval[other]}/reject", None),
            ("DELETE", f"/api/v1/webhooks/{world.webhook[other]}", None),
            ("POST", "/api/v1/webhooks", {"url": "http://127.0.0.1:9/x", "org": other}),
            ("PUT", f"/api/v1/vehicles/{v}", {"plate": "stolen"}),
            ("PUT", f"/api/v1/vehicles/new-{v}", {"dealer": other}),
            ("POST", "/api/v1/borrowers", {"name": "x", "org": other}),
            *(
                ("POST", f"/api/v1/spot-candidates/{world.candidate[other]}/{verb}", None)
                for verb in ("accept", "dismiss")
                if world.tenant(other) not in seen
            ),
            ("POST", "/api/v1/loans", {**loan, "loan_no": f"new-{n}", "borrower_id":
                                       world.borrower[other]}),
        ]  # fmt: skip
        for method, url, body in attempts:
            answer = client.request(method, url, json=body, headers=key)
            assert answer.status_code == 404, (method, url, answer.text)
            assert answer.json()["error"] == "not_found", (method, url, answer.text)


def platform_view(api: ApiUnderTest) -> str:
    root = api.admin
    views = [
        pages(api, root, "/api/v1/devices", "after"),
        pages(api, root, "/api/v1/loans", "after_id"),
        pages(api, root, "/api/v1/alerts", "after_id"),
        ok(api.client.get("/api/v1/fences", headers=root)),
        ok(api.client.get("/api/v1/keys", headers=root)),
        ok(api.client.get("/api/v1/orgs", headers=root)),
        pages(api, root, "/api/v1/approvals", "after_id"),
        pages(api, root, "/api/v1/borrowers", "after_id"),
        pages(api, root, "/api/v1/vehicles", "after"),
        ok(api.client.get("/api/v1/webhooks", headers=root)),
        pages(api, root, "/api/v1/spot-candidates", "after_id"),
    ]
    for loan in views[1]:
        views.append(ok(api.client.get(f"/api/v1/loans/{loan['loan_no']}/actions", headers=root)))
    return json.dumps(views, sort_keys=True)


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    tenants=st.integers(1, 2),
    extra=st.lists(st.tuples(st.integers(0, 9), st.sampled_from(["branch", "dealer"])), max_size=3),
)
def test_a_key_sees_exactly_its_subtree_and_changes_nothing_outside(
    served: Served, tenants: int, extra: list[tuple[int, str]]
) -> None:
    api = served.api
    world = build(api, tenants, extra)
    for unit in world.paths:
        check_lists(api, world, unit, world.viewers[unit])
        check_items(api, world, unit, world.viewers[unit])
    before = platform_view(api)
    for unit in world.paths:
        probe_mutations(api, world, unit, world.admins[unit])
    assert platform_view(api) == before
