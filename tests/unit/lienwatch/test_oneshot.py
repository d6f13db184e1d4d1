"""`lienwatch.oneshot`: a one-shot run's process defaults, which never override the user's."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from lienwatch import oneshot


def test_defaults_are_set_only_where_the_environment_has_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in oneshot.PROCESS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    oneshot.prepare_batch_process()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "3"
    assert os.environ["ARROW_DEFAULT_MEMORY_POOL"] == "system"
    assert os.environ["OMP_NUM_THREADS"] == "1"
    assert os.environ["PROJ_CURL_CA_BUNDLE"] == ""


def test_arrow_allocates_from_the_c_heap_in_a_prepared_process() -> None:
    code = (
        "from lienwatch.oneshot import prepare_batch_process; prepare_batch_process(); "
        "import pyarrow; print(pyarrow.default_memory_pool().backend_name)"
    )
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip() == "system"


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_takes_the_thresholds() -> None:
    assert oneshot.keep_freed_memory()
