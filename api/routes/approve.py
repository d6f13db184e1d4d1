"""The approve step of a dangerous command, all or nothing as seen from outside.

`approved` means the command exists. The request is first claimed by the approving admin (for
`APPROVAL_CLAIM_MS`: no one else approves, rejects or expires it meanwhile); the command is then
sent, or queued for an offline tracker, through the same sender as any command; and one
transaction records it and marks the request approved with its `command_id`. When the command
cannot be sent (the device is no longer the approver's to command, the queue refused it, the
sender or the database failed), the claim is dropped and the request stays pending, retryable
until it expires or is rejected, with the reason in `last_error` and a `command.approve_failed`
audit entry; the answer is the failure's own error.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi.responses import JSONResponse

from api.auth import Identity
from api.command_views import approval_json
from api.context import ApiContext
from api.errors import ApiError, not_found
from api.routes.commands import message_for, read_command
from ingest.commands import CommandOutcome, reply_json
from ingest.jt808.messages import Message
from store import Device
from store.approvals import Approval

log = logging.getLogger("lienwatch.api")

# How long one approval may take to send its command before its claim lapses (the sender waits
# up to its command timeout, about half a minute, for the tracker's answer): a claim left by a
# process that died makes the request approvable again after this.
APPROVAL_CLAIM_MS = 5 * 60 * 1000
_MAX_ERROR = 500


def _reason(exc: Exception) -> str:
    if isinstance(exc, ApiError):
        return f"{exc.code}: {exc.detail}"
    return f"{type(exc).__name__}: {exc}"


async def _give_back(ctx: ApiContext, who: Identity, approval: Approval, reason: str) -> None:
    """The claim dropped with the reason kept; when even that cannot be written (the database
    is down), the claim lapses by itself."""
    try:
        await ctx.scoped(who, lambda s: s.approval_failed(approval, reason[:_MAX_ERROR]))
    except Exception as exc:  # the answer is the first failure's; this one is only logged
        log.warning("approval %d: failure not recorded (%s); its claim lapses", approval.id, exc)


async def _send(
    ctx: ApiContext, who: Identity, approval: Approval
) -> tuple[Device, Message, dict[str, Any], CommandOutcome]:
    """The command sent (or queued) to the request's device, as that device is sent it."""
    assert ctx.send_command is not None
    device = await ctx.scoped(who, lambda s: s.device(approval.terminal))
    if device is None:  # moved out of the approver's subtree, or gone
        raise not_found(f"no device {approval.terminal}")
    message, request = message_for(json.loads(approval.request), device)
    outcome = await ctx.send_command(device.terminal, message)
    if outcome.refused is not None:
        raise ApiError(409, "not_sent", f"{approval.terminal}: {outcome.refused}")
    return device, message, request, outcome


async def approve(ctx: ApiContext, who: Identity, approval_id: int) -> JSONResponse:
    """Claims, sends, records: see the module docstring."""
    if ctx.send_command is None:
        raise ApiError(503, "commands_unavailable", "this process does not run the gateway")
    approval = await ctx.scoped(who, lambda s: s.claim_approval(approval_id, APPROVAL_CLAIM_MS))
    try:
        device, message, request, outcome = await _send(ctx, who, approval)
    except Exception as exc:
        await _give_back(ctx, who, approval, _reason(exc))
        raise
    text = json.dumps({**request, "approved_by": who.name}, ensure_ascii=False)
    try:
        linked, command_id = await ctx.scoped(
            who,
            lambda s: s.approve_sent(
                approval,
                device,
                command_id=outcome.command_id,
                body=message.encode_body(),
                state=outcome.state,
                request=text,
                reply=reply_json(outcome.reply),
            ),
        )
    except Exception as exc:
        what = (
            f"command {outcome.command_id} queued"
            if outcome.command_id is not None
            else f"command {outcome.state.value}"
        )
        await _give_back(ctx, who, approval, f"{what} but not recorded: {_reason(exc)}")
        raise
    command = await read_command(ctx, who, command_id)
    return JSONResponse({**approval_json(linked), "command": command})
