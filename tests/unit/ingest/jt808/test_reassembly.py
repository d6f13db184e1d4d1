"""Sub-package reassembly: joining in index order, limits, and overdue groups."""

from __future__ import annotations

from ingest.jt808.header import Header
from ingest.jt808.ids import Edition
from ingest.jt808.reassembly import Overdue, Reassembler


def _packet(index: int, count: int = 3, *, serial0: int = 100, msg_id: int = 0x0900) -> Header:
    return Header(
        msg_id=msg_id,
        edition=Edition.V2013,
        terminal="013912345678",
        serial=(serial0 + index - 1) & 0xFFFF,
        body_length=1,
        packet_count=count,
        packet_index=index,
        terminal_raw=bytes.fromhex("013912345678"),
    )


def test_packets_in_any_order_join_in_index_order() -> None:
    parts = Reassembler()
    assert parts.add(_packet(3), b"c", 0.0) is None
    assert parts.add(_packet(1), b"a", 0.0) is None
    assert len(parts) == 1
    done = parts.add(_packet(2), b"b", 0.0)
    assert done is not None
    assert done.body == b"abc"
    assert len(parts) == 0


def test_the_joined_header_is_the_first_packets_without_packet_fields() -> None:
    parts = Reassembler()
    parts.add(_packet(2), b"b", 0.0)
    parts.add(_packet(3), b"c", 0.0)
    done = parts.add(_packet(1), b"a", 0.0)
    assert done is not None
    assert done.header.serial == 100
    assert done.header.packet_count is None
    assert done.header.packet_index is None
    assert done.header.body_length == 3
    assert done.header.msg_id == 0x0900
    assert done.header.terminal_raw == bytes.fromhex("013912345678")


def test_a_repeated_packet_replaces_the_earlier_copy() -> None:
    parts = Reassembler()
    parts.add(_packet(1), b"x", 0.0)
    parts.add(_packet(1), b"a", 0.0)
    done = parts.add(_packet(2, count=2), b"b", 0.0)
    assert done is None  # a different count is a different message
    done = parts.add(_packet(2), b"b", 0.0)
    assert done is None
    done = parts.add(_packet(3), b"c", 0.0)
    assert done is not None
    assert done.body == b"abc"


def test_serials_that_wrap_past_65535_still_give_the_first_serial() -> None:
    parts = Reassembler()
    parts.add(_packet(3, serial0=65535), b"c", 0.0)
    assert parts.overdue(100.0) == [Overdue(0x0900, 65535, (1, 2), False)]


def test_packet_fields_out_of_range_are_dropped_and_counted() -> None:
    parts = Reassembler()
    assert parts.add(_packet(0), b"a", 0.0) is None
    assert parts.add(_packet(4), b"a", 0.0) is None
    assert parts.add(_packet(1, count=0), b"a", 0.0) is None
    assert parts.dropped == 3
    assert len(parts) == 0


def test_a_message_over_the_size_limit_is_dropped() -> None:
    parts = Reassembler(max_bytes=5)
    parts.add(_packet(1), b"abc", 0.0)
    assert parts.add(_packet(2), b"def", 0.0) is None
    assert parts.dropped == 1
    assert len(parts) == 0


def test_beyond_the_group_limit_the_least_recently_touched_group_is_dropped() -> None:
    parts = Reassembler(max_groups=2)
    parts.add(_packet(1, msg_id=0x0901), b"a", 0.0)
    parts.add(_packet(1, msg_id=0x0902), b"a", 1.0)
    parts.add(_packet(2, msg_id=0x0901), b"b", 2.0)
    parts.add(_packet(1, msg_id=0x0903), b"a", 3.0)
    assert parts.dropped == 1
    assert len(parts) == 2
    assert parts.add(_packet(3, msg_id=0x0901), b"c", 4.0) is not None


def test_an_idle_group_is_reported_overdue_with_its_missing_packets() -> None:
    parts = Reassembler(timeout_s=30.0, max_requests=2)
    parts.add(_packet(2), b"b", 10.0)
    assert parts.overdue(39.9) == []
    assert parts.overdue(40.0) == [Overdue(0x0900, 100, (1, 3), False)]
    assert parts.overdue(69.9) == []
    assert parts.overdue(70.0) == [Overdue(0x0900, 100, (1, 3), False)]
    assert parts.overdue(100.0) == [Overdue(0x0900, 100, (1, 3), True)]
    assert len(parts) == 0
    assert parts.dropped == 1


def test_a_packet_arriving_resets_the_idle_clock() -> None:
    parts = Reassembler(timeout_s=30.0)
    parts.add(_packet(1), b"a", 0.0)
    parts.add(_packet(2), b"b", 25.0)
    assert parts.overdue(40.0) == []
    assert parts.overdue(55.0) == [Overdue(0x0900, 100, (3,), False)]
