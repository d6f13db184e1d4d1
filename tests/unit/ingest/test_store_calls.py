"""Background store calls: an outage is one warning line, anything else a traceback."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ingest.store_calls import StoreCalls
from store import StoreUnavailableError


async def _raise(exc: Exception) -> None:
    raise exc


def test_an_outage_is_one_line_and_a_bug_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        calls = StoreCalls(lambda: None)  # type: ignore[arg-type,return-value]
        calls.spawn(_raise(StoreUnavailableError("positions: database unavailable")))
        calls.spawn(_raise(ValueError("a bug")))
        await calls.close()

    with caplog.at_level(logging.WARNING, logger="lienwatch.gateway"):
        asyncio.run(main())
    outage = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    bug = [r for r in caplog.records if r.getMessage() == "background task failed"]
    assert [(r.levelno, r.exc_info) for r in outage] == [(logging.WARNING, None)]
    assert len(bug) == 1 and bug[0].levelno == logging.ERROR
    assert bug[0].exc_info is not None and isinstance(bug[0].exc_info[1], ValueError)
