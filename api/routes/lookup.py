"""Lookups several routers share, answering 404 when the thing is not there."""

from __future__ import annotations

from collections.abc import Callable, Sequence

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


async def online_of(ctx: ApiContext, terminals: Sequence[str]) -> Callable[[str], bool | None]:
    """Whether each of `terminals` is connected now (to this process's gateway, or in a split
    deployment to any gateway): a lookup answering None when the process cannot tell."""
    if ctx.online is None:
        return lambda _terminal: None
    connected = await ctx.online(list(terminals)) if terminals else set()
    return lambda terminal: terminal in connected
