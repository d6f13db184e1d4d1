"""The store's HTTP API records (keys, fences, device pages, command log) on SQLite and real
PostgreSQL, with one meaning."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from store import CommandState, Device, Store, StoreError, migrate, open_store
from store.interface import ApiKey, CommandLog, FenceFeature

T0 = 1_709_280_000_000  # 2024-03-01T08:00:00Z


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.db)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    migrate(url, tmp_path)
    opened = open_store(url, tmp_path)
    yield opened
    opened.close()


def key(name: str, role: str = "viewer", digest: str | None = None) -> ApiKey:
    return ApiKey(name, role, digest or f"hash-of-{name}", f"lw_{name[:4]}", T0)


def fence(fence_id: str, kind: str = "hotspot", text: str = "{}") -> FenceFeature:
    return FenceFeature(fence_id, kind, text)


def test_api_keys_are_found_by_hash_listed_by_name_and_deleted(store: Store) -> None:
    assert store.create_api_key(key("ops", "admin"))
    assert store.create_api_key(key("alice", "officer"))
    assert store.api_key_by_hash("hash-of-ops") == key("ops", "admin")
    assert store.api_key_by_hash("no-such-hash") is None
    assert [k.name for k in store.list_api_keys()] == ["alice", "ops"]
    assert store.delete_api_key("alice")
    assert not store.delete_api_key("alice")
    assert store.api_key_by_hash("hash-of-alice") is None


def test_a_taken_key_name_is_refused_unless_replacing(store: Store) -> None:
    assert store.create_api_key(key("ops", "admin", "first"))
    assert not store.create_api_key(key("ops", "viewer", "second"))
    assert store.api_key_by_hash("first") is not None
    assert store.create_api_key(key("ops", "admin", "second"), replace=True)
    assert store.api_key_by_hash("first") is None
    assert store.api_key_by_hash("second") == key("ops", "admin", "second")


def test_an_unknown_role_is_refused_by_the_schema(store: Store) -> None:
    with pytest.raises(StoreError):
        store.create_api_key(key("root", "superuser"))


def test_every_fence_change_bumps_the_set_version_and_stamps_the_fence(store: Store) -> None:
    assert store.fences_version() == 0
    v1 = store.put_fences([fence("pawn-1"), fence("home", "allowed_area", '{"a": 1}')], T0)
    assert v1 == 1
    assert store.fences_version() == 1
    listed = store.list_fences()
    assert [(f.id, f.kind, f.version, f.updated_ms) for f in listed] == [
        ("home", "allowed_area", 1, T0),
        ("pawn-1", "hotspot", 1, T0),
    ]
    assert listed[0].feature == '{"a": 1}'
    v2 = store.put_fences([fence("home", "zone", '{"a": 2}')], T0 + 5)
    assert v2 == 2
    home = store.get_fence("home")
    assert home is not None
    assert (home.kind, home.feature, home.version, home.updated_ms) == (
        "zone",
        '{"a": 2}',
        2,
        T0 + 5,
    )
    pawn = store.get_fence("pawn-1")
    assert pawn is not None and pawn.version == 1  # untouched by the second change


def test_deleting_a_fence_bumps_the_version_and_a_missing_one_changes_nothing(
    store: Store,
) -> None:
    store.put_fences([fence("pawn-1"), fence("pawn-2")], T0)
    assert store.delete_fence("pawn-1", T0 + 1) == 2
    assert store.delete_fence("pawn-1", T0 + 2) is None
    assert store.fences_version() == 2
    assert store.get_fence("pawn-1") is None
    assert [f.id for f in store.list_fences()] == ["pawn-2"]


def test_a_fence_change_is_seen_by_another_connection(store: Store, tmp_path: Path) -> None:
    store.put_fences([fence("pawn-1")], T0)
    url = getattr(store, "_url", None)
    other = open_store(url, tmp_path)
    try:
        assert other.fences_version() == 1
        store.put_fences([fence("pawn-2")], T0)
        assert other.fences_version() == 2
        assert [f.id for f in other.list_fences()] == ["pawn-1", "pawn-2"]
    finally:
        other.close()


def test_devices_page_by_terminal_and_filter_by_vehicle(store: Store) -> None:
    for i in range(5):
        store.upsert_device(
            Device(f"01390000000{i}", vehicle_id="V1" if i % 2 == 0 else "V2", auth_code="c")
        )
    first = store.find_devices(limit=2)
    assert [d.terminal for d in first] == ["013900000000", "013900000001"]
    rest = store.find_devices(after=first[-1].terminal, limit=10)
    assert [d.terminal for d in rest] == ["013900000002", "013900000003", "013900000004"]
    v1 = store.find_devices(vehicle_id="V1", limit=10)
    assert [d.terminal for d in v1] == ["013900000000", "013900000002", "013900000004"]
    assert [d.terminal for d in store.find_devices(vehicle_id="V1", after="013900000000")] == [
        "013900000002",
        "013900000004",
    ]
    assert store.find_devices(vehicle_id="nobody") == []
    assert first[0].auth_code == "c"


def test_recorded_commands_get_ids_beside_queued_ones_and_never_go_out_again(
    store: Store,
) -> None:
    store.upsert_device(Device("013900000001"))
    queued = store.enqueue_command("013900000001", 0x8201, b"", T0)
    answered = store.record_command("013900000001", 0x8105, b"\x04", CommandState.ACKED, T0 + 1)
    assert answered != queued
    got = store.get_command(answered)
    assert got is not None
    assert (got.msg_id, got.body, got.state, got.attempts) == (
        0x8105,
        b"\x04",
        CommandState.ACKED,
        1,
    )
    # Only the queued one waits for the terminal.
    assert [c.id for c in store.commands_to_send("013900000001", T0 + 2)] == [queued]
    assert [c.id for c in store.list_commands("013900000001", 10)] == [answered, queued]
    assert [c.id for c in store.list_commands("013900000001", 1)] == [answered]
    assert store.list_commands("013900000009", 10) == []


def test_recording_a_command_for_an_unknown_terminal_fails(store: Store) -> None:
    with pytest.raises(StoreError, match="unknown terminal"):
        store.record_command("013900000009", 0x8201, b"", CommandState.FAILED, T0)


def test_the_command_log_keeps_who_asked_and_the_answer(store: Store) -> None:
    store.upsert_device(Device("013900000001"))
    cid = store.enqueue_command("013900000001", 0x8201, b"", T0)
    assert store.command_log(cid) is None
    store.log_command(CommandLog(cid, "alice", '{"kind": "query_location"}'))
    assert store.command_log(cid) == CommandLog(cid, "alice", '{"kind": "query_location"}')
    store.log_command(CommandLog(cid, "alice", '{"kind": "query_location"}', '{"lat": 31.0}'))
    logged = store.command_log(cid)
    assert logged is not None and logged.reply == '{"lat": 31.0}'
