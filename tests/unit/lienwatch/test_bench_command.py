"""`lienwatch bench` without the bench extra: one line naming it, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lienwatch.commands.bench import NEEDS_EXTRA


def test_bench_without_pytest_benchmark_names_the_extra(tmp_path: Path) -> None:
    # Shadows the installed package: a real ImportError at import time, as when it is missing.
    (tmp_path / "pytest_benchmark.py").write_text("raise ImportError('not installed')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", "from lienwatch.cli import main; main()", "bench", "decode"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == NEEDS_EXTRA
    assert NEEDS_EXTRA == "lienwatch bench needs the bench extra: pip install 'lienwatch[bench]'"
    assert done.stdout == ""
