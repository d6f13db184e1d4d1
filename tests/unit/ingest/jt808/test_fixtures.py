"""Every fixture frame (the public set and our own) decodes to its expectation in the JSON view.

An expectation is a recursive subset of the decoded object: its keys must be present with equal
values (floats within 1e-9); `{"error": true}` asks for an error object with a contract code.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ingest.jt808.jsonview import decode_hex_line
from tests.conftest import LOCAL_FRAMES, PUBLIC_FRAMES, load_frame_fixtures, read_frames

CONTRACT_CODES = {
    "bad_checksum",
    "bad_escape",
    "truncated",
    "bad_length",
    "unknown_message",
    "bad_body",
}
FIXTURES = load_frame_fixtures()


def subset_mismatches(expected: Any, got: Any, path: str = "$") -> list[str]:
    """Where `got` differs from `expected` read as a recursive subset; empty when it matches."""
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return [f"{path}: expected an object, got {got!r}"]
        out: list[str] = []
        for key, value in expected.items():
            if key not in got:
                out.append(f"{path}.{key}: missing")
            elif key == "error" and value is True and path == "$":
                if got[key] not in CONTRACT_CODES:
                    out.append(f"{path}.error: {got[key]!r} is not a contract code")
            else:
                out += subset_mismatches(value, got[key], f"{path}.{key}")
        return out
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            return [f"{path}: expected {len(expected)} items, got {got!r}"]
        return [m for i, (e, g) in enumerate(zip(expected, got, strict=True))
                for m in subset_mismatches(e, g, f"{path}[{i}]")]  # fmt: skip
    if isinstance(expected, float) and not isinstance(got, bool) and isinstance(got, int | float):
        return [] if abs(expected - got) <= 1e-9 else [f"{path}: {got!r} != {expected!r}"]
    if type(expected) is not type(got) or expected != got:
        return [f"{path}: {got!r} != {expected!r}"]
    return []


def test_the_public_fixture_file_is_present_and_keeps_its_provenance() -> None:
    rows = read_frames(PUBLIC_FRAMES)
    assert all(row["source"] and row["source"] != "hand-made" for row in rows)


def test_a_missing_or_empty_fixture_file_is_an_error_not_silence(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing"):
        read_frames(tmp_path / "absent.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty"):
        read_frames(empty)


def test_our_own_fixture_file_is_loaded_with_the_public_one() -> None:
    assert LOCAL_FRAMES.is_file()
    ids = {row["id"] for row in FIXTURES}
    assert any(i.startswith("local-") for i in ids)
    assert any(not i.startswith("local-") for i in ids)


def test_fixture_ids_are_unique_and_rows_are_complete() -> None:
    counts = Counter(row["id"] for row in FIXTURES)
    assert [i for i, n in counts.items() if n > 1] == []
    for row in FIXTURES:
        assert {"id", "hex", "expect"} <= set(row), row.get("id")


@pytest.mark.parametrize("row", FIXTURES, ids=[row["id"] for row in FIXTURES])
def test_a_fixture_frame_decodes_to_its_expectation(row: dict[str, Any]) -> None:
    got = decode_hex_line(row["hex"])
    mismatches = subset_mismatches(row["expect"], got)
    assert mismatches == [], f"{row['id']} ({row.get('notes', '')}): {mismatches} in {got}"
    if "error" in row["expect"]:
        assert got["error"] in CONTRACT_CODES
        assert isinstance(got["detail"], str)
        assert got["detail"]
    else:
        assert "error" not in got


@pytest.mark.parametrize(
    ("expected", "got"),
    [
        ({"a": 1}, {}),
        ({"a": 1}, {"a": 2}),
        ({"a": 1}, {"a": True}),
        ({"a": 1.0}, {"a": 1.00001}),
        ({"a": {"b": "x"}}, {"a": {"b": "y"}}),
        ({"a": [1, 2]}, {"a": [1]}),
        ({"a": [{"b": 1}]}, {"a": [{"b": 3}]}),
        ({"error": True}, {"error": "no_such_code"}),
        ({"error": True}, {"msg_id": "0x0200"}),
        ({"error": "bad_body"}, {"error": "bad_length"}),
    ],
)
def test_the_subset_comparison_reports_a_difference(expected: Any, got: Any) -> None:
    assert subset_mismatches(expected, got)


@pytest.mark.parametrize(
    ("expected", "got"),
    [
        ({"a": 1}, {"a": 1, "b": 2}),
        ({"a": 1.1}, {"a": 1.1 + 1e-12}),
        ({"a": 50.0}, {"a": 50}),
        ({"error": True}, {"error": "bad_escape", "detail": "x"}),
        ({"a": [{"b": 1}]}, {"a": [{"b": 1, "c": 2}]}),
    ],
)
def test_the_subset_comparison_accepts_a_superset(expected: Any, got: Any) -> None:
    assert subset_mismatches(expected, got) == []
