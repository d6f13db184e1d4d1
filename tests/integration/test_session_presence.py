"""What the processes of a split deployment share through the store, on SQLite and real
PostgreSQL: which gateway holds each session, commands claimed once with their answers kept,
and (PostgreSQL) the notice a queued command sends."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ingest.commands import CommandQueue
from ingest.jt808.messages import Message, TerminalGeneralResponse
from ingest.metrics import GatewayMetrics
from ingest.presence import SessionPresence
from ingest.store_calls import StoreCalls
from positions import PositionBatch
from store import CommandState, Device, Store, migrate, open_store
from store.notices import COMMANDS_CHANNEL, NoticeListener

T0 = 1_709_280_000_000


@pytest.fixture
def url(store_url: str | None, tmp_path: Path) -> str | None:
    """Each store (`store_url`: SQLite, then PostgreSQL), migrated."""
    migrate(store_url, tmp_path)
    return store_url


@pytest.fixture
def store(url: str | None, tmp_path: Path) -> Iterator[Store]:
    opened = open_store(url, tmp_path)
    yield opened
    opened.close()


def test_a_session_is_held_by_the_gateway_of_the_latest_login_while_it_beats(
    store: Store,
) -> None:
    store.gateway_alive("a", "host-a", T0, T0 - 60_000)
    store.gateway_alive("b", "host-b", T0, T0 - 60_000)
    store.update_sessions("a", [("t1", T0), ("t2", T0)], [])
    assert store.session_gateways(["t1", "t2", "t3"], T0 - 10_000) == {"t1": "a", "t2": "a"}
    # t1 reconnects to b; a's late news of its older login does not take it back.
    store.update_sessions("b", [("t1", T0 + 5)], [])
    store.update_sessions("a", [("t1", T0 + 1)], [])
    assert store.session_gateways(["t1"], T0 - 10_000) == {"t1": "b"}
    # a notices the old connection closed: it releases only what it still holds.
    store.update_sessions("a", [], ["t1", "t2"])
    assert store.session_gateways(["t1", "t2"], T0 - 10_000) == {"t1": "b"}
    # b stops beating: its sessions stop counting, and are forgotten once it is dead.
    store.gateway_alive("a", "host-a", T0 + 20_000, T0 - 60_000)
    assert store.session_gateways(["t1"], T0 + 10_000) == {}
    store.gateway_alive("a", "host-a", T0 + 120_000, T0 + 60_000)
    store.gateway_alive("b", "host-b", T0 + 120_000, T0 + 60_000)  # b comes back: nothing held
    assert store.session_gateways(["t1"], T0) == {}
    store.update_sessions("a", [("t9", T0)], [])
    store.drop_gateway("a")
    assert store.session_gateways(["t9"], T0) == {}


def test_many_terminals_are_looked_up_in_chunks(store: Store) -> None:
    store.gateway_alive("a", "", T0, 0)
    terminals = [f"{n:012d}" for n in range(1_200)]
    store.update_sessions("a", [(t, T0) for t in terminals], [])
    found = store.session_gateways([*terminals, *terminals[:5]], T0)
    assert len(found) == 1_200


def test_a_queued_command_is_claimed_once_and_keeps_its_answer(store: Store) -> None:
    store.upsert_device(Device("013900000001"))
    first = store.enqueue_command("013900000001", 0x8201, b"", T0)
    second = store.enqueue_command("013900000001", 0x8103, b"\x01", T0)
    assert store.terminals_with_queued_commands("gw1") == set()  # not held by it
    store.update_sessions("gw1", [("013900000001", T0)], [])
    assert store.terminals_with_queued_commands("gw1") == {"013900000001"}
    assert store.terminals_with_queued_commands("gw2") == set()
    assert store.claim_command(first, T0 + 1)
    assert not store.claim_command(first, T0 + 2)
    store.mark_command(first, CommandState.ACKED, T0 + 3, reply='{"msg_id": "0x0201"}')
    store.mark_command(first, CommandState.ACKED, T0 + 4)  # a later mark keeps the answer
    kept = store.get_command(first)
    assert kept is not None
    assert (kept.state, kept.attempts, kept.reply) == (
        CommandState.ACKED,
        1,
        '{"msg_id": "0x0201"}',
    )
    assert store.claim_command(second, T0 + 5)
    assert store.terminals_with_queued_commands("gw1") == set()
    assert store.last_alert_id() == 0


@pytest.mark.db
def test_a_queued_command_tells_the_listening_gateways_once_committed(pg_url: str) -> None:
    heard: list[tuple[str, str]] = []
    got = threading.Event()

    def deliver(channel: str, payload: str) -> None:
        heard.append((channel, payload))
        got.set()

    migrate(pg_url, Path("."))
    listener = NoticeListener(pg_url, [COMMANDS_CHANNEL], deliver)
    listener.start()
    store = open_store(pg_url, Path("."))
    try:
        assert listener.connected.wait(10)
        store.upsert_device(Device("013900000002"))
        store.enqueue_command("013900000002", 0x8201, b"", T0)
        assert got.wait(10)
        assert heard == [(COMMANDS_CHANNEL, "013900000002")]
    finally:
        store.close()
        listener.close()


async def test_presence_writes_logins_and_closes_in_batches(
    url: str | None, tmp_path: Path
) -> None:
    calls = StoreCalls(lambda: open_store(url, tmp_path))
    presence = SessionPresence(calls, "gw1", "here", flush_s=0.01, beat_s=0.05)
    presence.start()
    reader = open_store(url, tmp_path)
    try:
        presence.held("t1")
        presence.held("t2")
        presence.released("t2")

        async def seen() -> dict[str, str]:
            return await asyncio.to_thread(reader.session_gateways, ["t1", "t2"], 0)

        for _ in range(200):
            if await seen() == {"t1": "gw1"}:
                break
            await asyncio.sleep(0.02)
        assert await seen() == {"t1": "gw1"}
        await presence.close()
        assert await seen() == {}
    finally:
        reader.close()
        await calls.close()


class AnsweringLink:
    """A connection whose terminal answers every command with success at once."""

    def __init__(self) -> None:
        self.sent: list[Message] = []

    def send_command(self, message: Message, timeout_s: float) -> asyncio.Future[Message]:
        self.sent.append(message)
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        future.set_result(TerminalGeneralResponse(1, int(message.MSG_ID), 0))
        return future


async def test_deliveries_asked_for_at_once_send_each_queued_command_once(
    url: str | None, tmp_path: Path
) -> None:
    terminal = "013900000003"
    setup = open_store(url, tmp_path)
    setup.upsert_device(Device(terminal))
    ids = [setup.enqueue_command(terminal, 0x8201, b"", T0 + n) for n in range(3)]
    setup.close()
    calls = StoreCalls(lambda: open_store(url, tmp_path))
    link = AnsweringLink()
    queue = CommandQueue({terminal: link}, calls, GatewayMetrics())
    try:
        queue.wake("013900000099")  # not held here: nothing to do
        await asyncio.gather(*(queue.deliver_queued(terminal) for _ in range(4)))
        assert len(link.sent) == 3
        states = await calls.call(lambda s: [s.get_command(i) for i in ids])
        assert [c.state if c else None for c in states] == [CommandState.ACKED] * 3
        assert all(c is not None and c.reply and '"0x0001"' in c.reply for c in states)
    finally:
        await calls.close()


def test_a_detector_cursor_is_saved_and_the_stream_end_follows_writes(store: Store) -> None:
    assert store.last_position_seq() == 0
    assert store.detector_cursor("detector") is None
    batch = PositionBatch.from_columns(
        {
            "device": np.zeros(3, dtype=np.int32),
            "time_ms": T0 + np.arange(3) * 1000,
            "recv_ms": T0 + np.arange(3) * 1000,
            "lon": np.full(3, 121.0),
            "lat": np.full(3, 31.0),
        }
    )
    store.write_positions(batch, ["013900000004"])
    end = store.last_position_seq()
    page = store.positions_since(0, 10)
    assert (len(page.batch), page.cursor) == (3, end)
    store.save_detector_cursor("detector", end - 1, T0)
    store.save_detector_cursor("detector", end, T0 + 1)
    assert store.detector_cursor("detector") == end
    assert len(store.positions_since(end, 10).batch) == 0


def test_a_platform_secret_is_created_once_and_every_process_reads_the_same(
    url: str | None, tmp_path: Path
) -> None:
    """Gateways derive auth codes from it: each one opening its own store at the same time
    must get one value, and a restarted one the same again."""
    got: list[str] = []

    def ask() -> None:
        opened = open_store(url, tmp_path)
        try:
            got.append(opened.platform_secret("auth_codes"))
        finally:
            opened.close()

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 6 and len(set(got)) == 1
    assert len(got[0]) == 64 and int(got[0], 16) >= 0
    ask()
    assert got[-1] == got[0]
    again = open_store(url, tmp_path)
    try:
        assert again.platform_secret("another") != got[0]
    finally:
        again.close()
