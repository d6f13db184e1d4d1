"""Lookups several routers share, answering 404 when the thing is not there."""

from __future__ import annotations

from api.context import ApiContext
from api.errors import not_found
from store import Device


async def device_or_404(ctx: ApiContext, terminal: str) -> Device:
    device = await ctx.stores.run(lambda s: s.get_device(terminal))
    if device is None:
        raise not_found(f"no device {terminal}")
    return device


def is_online(ctx: ApiContext, terminal: str) -> bool | None:
    """Whether the terminal is connected now; None when the process cannot tell."""
    return None if ctx.online is None else bool(ctx.online(terminal))
