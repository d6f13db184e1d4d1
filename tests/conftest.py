"""Shared fixtures: real services (tests/support/services.py) and the shared JT808 fixtures."""

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
SHARED = ROOT.parent / "shared"
SHARED_FRAMES = SHARED / "fixtures" / "jt808" / "frames.jsonl"
LOCAL_FRAMES = ROOT / "tests" / "fixtures" / "jt808" / "frames.jsonl"


def load_frame_fixtures() -> list[dict[str, Any]]:
    """Frames with their expected decoding: the shared set plus our own captures."""
    rows: list[dict[str, Any]] = []
    for path in (SHARED_FRAMES, LOCAL_FRAMES):
        if path.exists():
            with path.open(encoding="utf-8") as fh:
                rows.extend(json.loads(line) for line in fh if line.strip())
    return rows


@pytest.fixture(scope="session")
def frame_fixtures() -> list[dict[str, Any]]:
    return load_frame_fixtures()
