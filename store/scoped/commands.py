"""Commands to trackers and the two-person approval of dangerous ones, as one caller sees
them."""

from __future__ import annotations

from dataclasses import replace

from store import approvals as approval_rows
from store.approvals import Approval
from store.interface import CommandLog, CommandState, Device, QueuedCommand
from store.scoped.base import ApprovalError, NotInScopeError, ScopeBase


class CommandRecords(ScopeBase):
    def command(self, command_id: int) -> tuple[QueuedCommand, CommandLog | None] | None:
        """The command and the API's record of it, when its unit is in the subtree (the
        record's, else its device's)."""
        command = self._s.get_command(command_id)
        if command is None:
            return None
        log = self._s.command_log(command_id)
        if log is not None:
            org: int | None = log.org
        else:
            device = self._s.get_device(command.terminal)
            org = None if device is None else device.org
        return (command, log) if self.visible(org) else None

    def commands(self, device: Device, limit: int) -> list[tuple[QueuedCommand, CommandLog | None]]:
        """The device's most recent commands of units in the subtree, newest first."""
        if not self.visible(device.org):
            raise NotInScopeError(f"no device {device.terminal}")
        found = []
        for command in self._s.list_commands(device.terminal, limit):
            log = self._s.command_log(command.id)
            if self.visible(device.org if log is None else log.org):
                found.append((command, log))
        return found

    def record_command(
        self,
        device: Device,
        *,
        command_id: int | None,
        msg_id: int,
        body: bytes,
        state: CommandState,
        request: str,
        reply: str | None,
        issued_by: str | None = None,
    ) -> int:
        """Records who issued a command to a device of the subtree (recording the command
        itself first when the sender gave it no id); returns the command id."""
        if not self.visible(device.org):
            raise NotInScopeError(f"no device {device.terminal}")
        with self.transaction("log command"):
            if command_id is None:
                command_id = self._s.record_command(
                    device.terminal, msg_id, body, state, self._clock_ms()
                )
            log = CommandLog(command_id, issued_by or self.actor, request, reply, device.org)
            self._s.log_command(log)
            self._audit("command.send", f"command:{command_id}", device.org, None, log)
        return command_id

    def request_approval(
        self, device: Device, msg_id: int, body: bytes, request: str, ttl_ms: int
    ) -> Approval:
        if not self.visible(device.org):
            raise NotInScopeError(f"no device {device.terminal}")
        now = self._clock_ms()
        with self.transaction("request approval"):
            approval = approval_rows.add(
                self._s,
                terminal=device.terminal,
                org=device.org,
                msg_id=msg_id,
                body=body,
                request=request,
                requested_by=self.actor,
                now_ms=now,
                expires_ms=now + ttl_ms,
            )
            self._audit("command.request", f"approval:{approval.id}", device.org, None, approval)
        return approval

    def approvals(
        self, *, state: str | None = None, after_id: int = 0, limit: int = 100
    ) -> list[Approval]:
        approval_rows.expire(self._s, self._clock_ms())
        return approval_rows.find(self._s, self.scope, state=state, after_id=after_id, limit=limit)

    def approval(self, approval_id: int) -> Approval | None:
        approval_rows.expire(self._s, self._clock_ms())
        return approval_rows.get(self._s, approval_id, self.scope)

    def _decidable(self, approval_id: int, now: int) -> Approval:
        """The request, pending and decidable by this caller; NotInScopeError or
        ApprovalError saying why not."""
        approval_rows.expire(self._s, now)
        known = approval_rows.get(self._s, approval_id, self.scope)
        if known is None:
            raise NotInScopeError(f"no approval {approval_id}")
        if known.state != "pending":
            reason = "expired" if known.state == "expired" else "decided"
            raise ApprovalError(reason, f"approval {approval_id} is {known.state}")
        if known.requested_by == self.actor:
            raise ApprovalError("own_request", "a request is approved or rejected by someone else")
        if known.claimed(now):
            raise ApprovalError(
                "approval_in_progress",
                f"approval {approval_id} is being approved by {known.claimed_by}; retry shortly",
            )
        return known

    def reject(self, approval_id: int) -> Approval:
        """Rejects a pending request of the subtree made by someone else (never sent)."""
        now = self._clock_ms()
        with self.transaction("reject approval"):
            known = self._decidable(approval_id, now)
            if not approval_rows.decide(self._s, approval_id, "rejected", self.actor, now):
                raise ApprovalError("decided", f"approval {approval_id} was decided meanwhile")
            decided = approval_rows.get(self._s, approval_id, None)
            assert decided is not None
            self._audit("command.rejected", f"approval:{approval_id}", known.org, known, decided)
        return decided

    def claim_approval(self, approval_id: int, lease_ms: int) -> Approval:
        """Step one of an approval: the request, claimed by this caller for `lease_ms` while
        its command is sent (no one else approves, rejects or expires it meanwhile). The
        same refusals as `reject`."""
        now = self._clock_ms()
        with self.transaction("claim approval"):
            self._decidable(approval_id, now)
            if not approval_rows.claim(self._s, approval_id, self.actor, now, now + lease_ms):
                raise ApprovalError("decided", f"approval {approval_id} was decided meanwhile")
            claimed = approval_rows.get(self._s, approval_id, None)
        assert claimed is not None
        return claimed

    def approve_sent(
        self,
        approval: Approval,
        device: Device,
        *,
        command_id: int | None,
        body: bytes,
        state: CommandState,
        request: str,
        reply: str | None,
    ) -> tuple[Approval, int]:
        """Step two, the command sent or queued: records it (as `record_command`) and marks
        the claimed request approved with its id, in one transaction, audited as
        `command.send` and `command.approved`. ApprovalError `decided` when the claim lapsed
        and someone else took the request meanwhile (nothing recorded then)."""
        now = self._clock_ms()
        with self.transaction("approve"):
            sent_id = self.record_command(
                device,
                command_id=command_id,
                msg_id=approval.msg_id,
                body=body,
                state=state,
                request=request,
                reply=reply,
                issued_by=approval.requested_by,
            )
            if not approval_rows.settle(self._s, approval.id, self.actor, now, sent_id):
                raise ApprovalError("decided", f"approval {approval.id} was taken meanwhile")
            decided = approval_rows.get(self._s, approval.id, None)
            assert decided is not None
            before = replace(approval, claimed_by=None, claim_until_ms=None)
            target = f"approval:{approval.id}"
            self._audit("command.approved", target, approval.org, before, decided)
        return decided, sent_id

    def approval_failed(self, approval: Approval, error: str) -> Approval | None:
        """Step two when the command could not be sent: the claim dropped, the request
        pending again with `error` as its `last_error`, audited as `command.approve_failed`.
        None when this caller no longer held the claim (nothing written)."""
        with self.transaction("approval failed"):
            if not approval_rows.release(self._s, approval.id, self.actor, error):
                return None
            after = approval_rows.get(self._s, approval.id, None)
            assert after is not None
            before = replace(approval, claimed_by=None, claim_until_ms=None)
            self._audit(
                "command.approve_failed", f"approval:{approval.id}", approval.org, before, after
            )
        return after
