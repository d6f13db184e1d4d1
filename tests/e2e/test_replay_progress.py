"""`lienwatch replay`'s progress bar: drawn on a terminal, never into a pipe; either way the JSON
summary is the last line of stderr."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.unit.pipeline.tracks import HOME, csv_bytes, stay

CODE = "from lienwatch.cli import main; main()"


def _args(tmp_path: Path) -> list[str]:
    (tmp_path / "positions.csv").write_bytes(csv_bytes(stay("W", HOME, range(0, 600, 5))))
    (tmp_path / "fences.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    return [
        "replay",
        "--positions", str(tmp_path / "positions.csv"),
        "--fences", str(tmp_path / "fences.geojson"),
        "--out", str(tmp_path / "alerts.jsonl"),
    ]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "LIENWATCH_TEST_PROGRESS_AFTER_S": "0"}


def test_a_terminal_gets_a_bar_that_is_erased_before_the_summary(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    try:
        done = subprocess.Popen(
            [sys.executable, "-c", CODE, *_args(tmp_path)],
            stdout=subprocess.DEVNULL,
            stderr=follower,
            env=_env(),
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closes with the process
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert done.wait(timeout=120) == 0
    finally:
        os.close(leader)
    text = b"".join(chunks).decode()
    assert "\r" in text
    assert "[" in text
    assert "%" in text
    after_bar = text.rsplit("\x1b[K", 1)[1]
    summary = json.loads(after_bar.strip())
    assert summary["positions"] == 120


def test_a_pipe_gets_no_bar_and_the_summary_last(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CODE, *_args(tmp_path)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr
    assert "\x1b" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[-1])["positions"] == 120
