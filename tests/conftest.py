"""Fixtures for every test: real services (tests/support/services.py) and the JT808 frames.

The frames live in tests/fixtures/jt808/ (see its README): `public_frames.jsonl`, frames from
the test data of other open-source JT/T 808 projects, and `frames.jsonl`, our own. Both must be
there: a missing or empty file fails the tests that read it instead of shrinking them silently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import (  # noqa: F401  (fixtures)
    mqtt_url,
    pg_database_url,
    pg_url,
    redis_url,
    store_url,
)

ROOT = Path(__file__).resolve().parent.parent
FRAMES_DIR = ROOT / "tests" / "fixtures" / "jt808"
PUBLIC_FRAMES = FRAMES_DIR / "public_frames.jsonl"
LOCAL_FRAMES = FRAMES_DIR / "frames.jsonl"


def read_frames(path: Path) -> list[dict[str, Any]]:
    """One fixture file's rows; a missing or empty file raises, so no test passes on nothing."""
    if not path.is_file():
        raise FileNotFoundError(f"JT808 fixture file missing: {path}")
    with path.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    if not rows:
        raise ValueError(f"JT808 fixture file is empty: {path}")
    return rows


def load_frame_fixtures() -> list[dict[str, Any]]:
    """Frames with their expected decoding: the public set plus our own captures."""
    return read_frames(PUBLIC_FRAMES) + read_frames(LOCAL_FRAMES)


@pytest.fixture(scope="session")
def frame_fixtures() -> list[dict[str, Any]]:
    return load_frame_fixtures()
