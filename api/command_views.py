"""JSON shapes shared by the command and approval routes: command kinds by message id, and an
approval request as answered."""

from __future__ import annotations

import json
from typing import Any

from api.views import iso
from store.approvals import Approval

KINDS = {
    0x8103: "set_parameters",
    0x8201: "query_location",
    0x8202: "track",
    0x8105: "terminal_control",
    0x8500: "vehicle_control",
}


def approval_json(approval: Approval) -> dict[str, Any]:
    return {
        "id": approval.id,
        "terminal": approval.terminal,
        "org": approval.org,
        "kind": KINDS.get(approval.msg_id, f"0x{approval.msg_id:04x}"),
        "msg_id": f"0x{approval.msg_id:04x}",
        "request": json.loads(approval.request),
        "state": approval.state,
        "requested_by": approval.requested_by,
        "requested": iso(approval.requested_ms),
        "expires": iso(approval.expires_ms),
        "decided_by": approval.decided_by,
        "decided": iso(approval.decided_ms),
        "command_id": approval.command_id,
        "last_error": approval.last_error,
    }
