"""The journal record frame: round trip and every way a damaged frame is recognised."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.journal_format import (
    JournalFormatError,
    decode_payload,
    encode_payload,
    encode_record,
    payload_of,
    read_frame,
)
from positions import PositionBatch

BATCH = PositionBatch.from_columns(
    {"device": [1, 0, 1], "time_ms": [1, 2, 3], "alarm": [2**32 - 1, 0, 5], "lat": [1.5, 2, 3]}
)
TERMINALS = ["013900000001", "013900000002"]


def test_a_record_reads_back_as_its_lsn_batch_and_terminals() -> None:
    blob = encode_record(42, encode_payload(BATCH, TERMINALS))
    frame = read_frame(blob, 0)
    assert frame is not None
    assert (frame.lsn, frame.end) == (42, len(blob))
    batch, terminals = decode_payload(payload_of(blob, frame))
    assert terminals == tuple(TERMINALS)
    for name, column in BATCH.columns().items():
        np.testing.assert_array_equal(getattr(batch, name), column)


def test_any_flipped_bit_or_missing_byte_makes_the_frame_unreadable() -> None:
    blob = encode_record(1, encode_payload(BATCH, TERMINALS))
    for i in range(len(blob)):
        damaged = bytearray(blob)
        damaged[i] ^= 0x01
        assert read_frame(bytes(damaged), 0) is None, i
    assert all(read_frame(blob[:cut], 0) is None for cut in range(len(blob)))


def test_payloads_with_inconsistent_sizes_or_devices_are_refused() -> None:
    payload = encode_payload(BATCH, TERMINALS)
    with pytest.raises(JournalFormatError, match="does not hold"):
        decode_payload(payload[:-1])
    with pytest.raises(JournalFormatError, match="terminal list"):
        decode_payload(encode_payload(BATCH, TERMINALS[:1]))


def test_terminal_ids_that_would_break_the_list_are_refused() -> None:
    with pytest.raises(ValueError, match="newlines"):
        encode_payload(BATCH, ["0139\n", "x"])
