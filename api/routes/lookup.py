"""Lookups several routers share, answering 404 when the thing is not there."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from api.context import ApiContext
from api.errors import not_found
from store import Device


async def device_or_404(ctx: ApiContext, terminal: str) -> Device:
    device = await ctx.stores.run(lambda s: s.get_device(terminal))
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
