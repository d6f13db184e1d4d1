"""Lookups several routers share, answering 404 when the thing is not there."""

from __future__ import annotations

from api.auth import Identity
from api.context import ApiContext
from api.errors import not_found
from store import Device


async def device_or_404(ctx: ApiContext, who: Identity, terminal: str) -> Device:
    """The device when it is in the caller's subtree (else 404, as for an unknown one)."""
    device = await ctx.scoped(who, lambda s: s.device(terminal))
    if device is None:
        raise not_found(f"no device {terminal}")
    return device


def is_online(ctx: ApiContext, terminal: str) -> bool | None:
    """Whether the terminal is connected now; None when the process cannot tell."""
    return None if ctx.online is None else bool(ctx.online(terminal))
