"""Every route of the API, taken from its own OpenAPI description, probed across two tenants:
a tenant's admin naming the other tenant's resource gets exactly the answer it gets for an id
that does not exist, and changes nothing; no list, page, figure, export or map answer names the
other tenant's records. A route added later with a path parameter this probe cannot fill fails
the test until it is taught the parameter, so no route escapes the probe."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts.model import Alert, AlertType
from ingest.commands import CommandOutcome
from ingest.jt808.messages import Message, TerminalGeneralResponse
from store import CommandState
from tests.support.api import ApiUnderTest, api_under_test, wait_for_backtest

NOW = 1_709_280_000_000
DAY = 86_400_000
SINCE = "2024-02-28T00:00:00Z"

# A valid body for each mutating route that takes one, so a refusal is the scope's, not the
# body's (a route missing here is sent `{}`: a 400 it then answers is compared like any other).
BODIES: dict[tuple[str, str], Any] = {
    ("PUT", "/api/v1/devices/{terminal}"): {"vehicle_id": "VX"},
    ("POST", "/api/v1/devices/{terminal}/commands"): {"kind": "query_location"},
    ("POST", "/api/v1/vehicles/{vehicle_id}/move"): {"org": "__MINE__"},
    ("PUT", "/api/v1/vehicles/{vehicle_id}"): {"plate": "X"},
    ("PUT", "/api/v1/orgs/{org_id}/rules"): {"overspeed": {"speed_kmh": 1}},
    ("POST", "/api/v1/loans/{loan_no}/payments"): {"installments": 1},
    ("POST", "/api/v1/loans/{loan_no}/transition"): {"to": "settled"},
    ("POST", "/api/v1/loans/{loan_no}/actions"): {
        "stage": "reminder",
        "channel": "call",
        "outcome": "no_answer",
    },
    ("POST", "/api/v1/alerts/{alert_id}/assign"): {"assignee": "x"},
}
SKIP_PATHS = {"/healthz", "/metrics"}  # no caller, no tenant data


SENT: list[str] = []  # terminals the API sent a command to, in order


async def _send(terminal: str, message: Message) -> CommandOutcome:
    SENT.append(terminal)
    return CommandOutcome(CommandState.ACKED, TerminalGeneralResponse(1, int(message.MSG_ID), 0))


@pytest.fixture
def api(store_url: str | None, tmp_path: Path) -> Iterator[ApiUnderTest]:
    SENT.clear()
    for running in api_under_test(store_url, tmp_path, send_command=_send, with_alerts=True):
        running.context.clock_ms = lambda: NOW
        yield running


def _made(answer: Any, *statuses: int) -> Any:
    assert answer.status_code in (statuses or (200, 201)), answer.text
    return answer.json()


def _tenant(api: ApiUnderTest, tag: str, n: int) -> dict[str, Any]:
    """A tenant with a branch, an admin key, a car with a tracker and a fix, a borrower, a
    loan, a fence, a webhook, a queued command, a pending approval and an alert; every name
    carries `tag`, so an answer naming any of them is found by searching for the tag."""
    c, root = api.client, api.admin
    tenant = _made(
        c.post("/api/v1/orgs", json={"name": f"{tag}-co", "kind": "tenant"}, headers=root)
    )
    branch = _made(
        c.post(
            "/api/v1/orgs",
            json={"name": f"{tag}-branch", "kind": "branch", "parent": tenant["id"]},
            headers=root,
        )
    )
    key = _made(
        c.post(
            "/api/v1/keys",
            json={"name": f"{tag}-admin", "role": "admin", "org": tenant["id"]},
            headers=root,
        )
    )
    admin = api.auth(key["key"])
    terminal, vehicle = f"01390000{n:04d}", f"{tag}-car"
    _made(
        c.put(
            f"/api/v1/vehicles/{vehicle}",
            json={"plate": f"{tag}-plate", "org": branch["id"]},
            headers=admin,
        )
    )
    _made(c.put(f"/api/v1/devices/{terminal}", json={"vehicle_id": vehicle}, headers=admin))
    api.write(
        terminal,
        [{"time_ms": NOW - 60_000 - i * 1000, "lon": 120.1, "lat": 30.2} for i in range(5)],
    )
    borrower = _made(c.post("/api/v1/borrowers", json={"name": f"{tag}-borrower"}, headers=admin))
    loan = {
        "loan_no": f"{tag}-loan",
        "borrower_id": borrower["id"],
        "vehicle_id": vehicle,
        "principal": "1000.00",
        "start_date": "2024-01-05",
        "due_day": 5,
    }
    _made(c.post("/api/v1/loans", json=loan, headers=admin))
    fence = {
        "type": "Feature",
        "properties": {"id": f"{tag}-spot", "kind": "hotspot", "radius_m": 300},
        "geometry": {"type": "Point", "coordinates": [120.1, 30.2]},
    }
    _made(c.post("/api/v1/fences", json=fence, headers=admin))
    hook = _made(
        c.post("/api/v1/webhooks", json={"url": f"https://93.184.216.34/{tag}-hook"}, headers=admin)
    )
    command = _made(
        c.post(
            f"/api/v1/devices/{terminal}/commands", json={"kind": "query_location"}, headers=admin
        ),
        200,
        201,
        202,
    )
    danger = {"kind": "terminal_control", "command": "factory_reset"}
    approval = _made(
        c.post(f"/api/v1/devices/{terminal}/commands", json=danger, headers=admin), 202
    )
    visit = {"vehicle_id": vehicle, "device_id": terminal, "borrower": f"{tag}-borrower"}
    gathering = {"lon": 120.1, "lat": 30.2, "radius_m": 150, "borrowers": 1, "visits": [visit]}
    store = api.store()
    try:
        store.add_alerts(
            [
                Alert(AlertType.OVERSPEED, terminal, vehicle, NOW - DAY),
                Alert(AlertType.GATHERING, terminal, vehicle, NOW - DAY, details=gathering),
            ],
            NOW - 1000,
        )
        (candidate,) = store.spot_candidates_in(None)[-1:]
    finally:
        store.close()
    backtest = _made(
        c.post(
            "/api/v1/backtests",
            json={"since": "2024-02-28T00:00:00Z", "until": "2024-03-01T00:00:00Z"},
            headers=admin,
        ),
        202,
    )
    # The job runs in the background; the views compared below must not see it move on.
    job = wait_for_backtest(api, f"/api/v1/backtests/{backtest['id']}", admin)
    assert job["state"] == "done", job["error"]
    alerts = _made(c.get("/api/v1/alerts", headers=admin))
    (alert,) = [a for a in alerts if a["vehicle_id"] == vehicle and a["type"] == "overspeed"]
    return {
        "tag": tag,
        "admin": admin,
        "ids": {
            "terminal": terminal,
            "vehicle_id": vehicle,
            "key": vehicle,
            "loan_no": f"{tag}-loan",
            "fence_id": f"{tag}-spot",
            "org_id": str(branch["id"]),
            "borrower_id": str(borrower["id"]),
            "endpoint_id": str(hook["id"]),
            "command_id": str(command["id"]),
            "approval_id": str(approval["id"]),
            "alert_id": str(alert["id"]),
            "candidate_id": str(candidate.id),
            "backtest_id": str(backtest["id"]),
            "name": f"{tag}-admin",
            "fmt": "csv",
        },
        "mine": {"org": branch["id"]},
    }


# Ids no tenant has, of the same shapes: what "an id that does not exist" answers.
MISSING = {
    "terminal": "013999999999",
    "vehicle_id": "nobody-car",
    "key": "nobody-car",
    "loan_no": "nobody-loan",
    "fence_id": "nobody-spot",
    "org_id": "987654",
    "borrower_id": "987654",
    "endpoint_id": "987654",
    "command_id": "987654",
    "approval_id": "987654",
    "alert_id": "987654",
    "candidate_id": "987654",
    "backtest_id": "987654",
    "name": "nobody-admin",
    "fmt": "csv",
}

CREATED = {"terminal": "013999999998", "vehicle_id": "nobody-new-car"}


def _routes(api: ApiUnderTest) -> list[tuple[str, str]]:
    spec = api.client.get("/openapi.json").json()
    return [
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        if path not in SKIP_PATHS
        for method in operations
    ]


def _names_a_record(path: str) -> bool:
    """A path naming one record (`{fmt}` only picks the file format of a list)."""
    return any(name != "fmt" for name in re.findall(r"\{(\w+)\}", path))


def _fill(path: str, ids: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in ids, f"{path}: teach this probe the path parameter {name!r}"
        return ids[name]

    return re.sub(r"\{(\w+)\}", value, path)


def _query(path: str) -> str:
    """A range wide enough for the routes that want one (others ignore it)."""
    return f"?from={SINCE}&since={SINCE}"


def _view(api: ApiUnderTest, owner: dict[str, Any], routes: list[tuple[str, str]]) -> str:
    """Everything the owner's admin reads: each GET route, filled with its own ids."""
    answers = []
    for method, path in routes:
        if method != "GET":
            continue
        ids = {**MISSING, **owner["ids"]}
        answer = api.client.get(_fill(path, ids) + _query(path), headers=owner["admin"])
        body = answer.text if "exports" not in path else answer.content.decode("utf-8", "replace")
        answers.append((path, answer.status_code, _stable(body)))
    return json.dumps(answers)


def _stable(body: str) -> str:
    """An answer without what changes on every read (server clocks, ages)."""
    return re.sub(r'"(age_s|now|generated|served)": ?[^,}]+', "", body)


def test_a_tenant_naming_the_others_records_gets_what_a_missing_id_gets(
    api: ApiUnderTest,
) -> None:
    routes = _routes(api)
    assert len(routes) > 50  # the whole API, not a stub
    a = _tenant(api, "ta7q", 1)
    b = _tenant(api, "tb7q", 2)
    before = _view(api, b, routes)
    sent_before = list(SENT)
    assert b["tag"] in before  # the other's view names its records: a leak would show
    probed = 0
    for method, path in routes:
        if not _names_a_record(path):
            continue
        body = BODIES.get((method, path), {} if method in ("POST", "PUT") else None)
        if isinstance(body, dict) and body.get("org") == "__MINE__":
            body = {**body, "org": a["mine"]["org"]}
        theirs = api.client.request(
            method,
            _fill(path, {**MISSING, **b["ids"]}) + _query(path),
            json=body,
            headers=a["admin"],
        )
        # A PUT of an id nobody has creates it (a new tracker, a new car); one the other tenant
        # has is a 404, as docs/api.md says. Those get ids of their own, never probed again.
        unknown = {**MISSING, **CREATED} if method == "PUT" else MISSING
        missing = api.client.request(
            method, _fill(path, unknown) + _query(path), json=body, headers=a["admin"]
        )
        assert 400 <= theirs.status_code < 500, (method, path, theirs.status_code, theirs.text)
        if method == "PUT" and missing.is_success:
            assert (theirs.status_code, theirs.json()["error"]) == (404, "not_found"), path
        else:
            assert theirs.status_code == missing.status_code, (method, path, theirs.text)
            assert theirs.json().get("error") == missing.json().get("error"), (method, path)
        echoed = theirs.text  # an error naming the id it was given tells nothing new
        for given in sorted(b["ids"].values(), key=len, reverse=True):
            echoed = echoed.replace(given, "")
        assert b["tag"] not in echoed, (method, path, theirs.text)
        probed += 1
    assert probed > 35
    assert _view(api, b, routes) == before  # nothing of the other's changed
    assert sent_before == SENT  # and nothing was sent to the other's tracker


def test_no_list_page_figure_export_or_map_names_the_other_tenant(api: ApiUnderTest) -> None:
    routes = _routes(api)
    a = _tenant(api, "ta8q", 3)
    b = _tenant(api, "tb8q", 4)
    lists = [
        _fill(path, MISSING)
        for method, path in routes
        if method == "GET" and not _names_a_record(path)
    ]
    assert len(lists) > 15
    seen_own = 0
    for path in lists:
        for me, other in ((a, b), (b, a)):
            answer = api.client.get(path + _query(path), headers=me["admin"])
            text = answer.content.decode("utf-8", "replace")
            assert other["tag"] not in text, (path, text[:500])
            seen_own += me["tag"] in text
    # The lists do show each tenant its own records, so the search above can find a leak.
    assert seen_own >= 2 * 8
