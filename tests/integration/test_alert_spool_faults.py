"""The alert spool on a full disk: the write is refused whole, the alerts stay in memory, and
once space returns they reach the spool and the store."""

from __future__ import annotations

import pytest

from alerts.model import Alert, AlertType
from pipeline.alert_spool import AlertSpool
from tests.support.faults import NEEDS_ROOT, fill, small_tmpfs

pytestmark = NEEDS_ROOT


def alerts(n: int) -> list[Alert]:
    return [
        Alert(AlertType.POWER_CUT, f"0139{i:08d}", "V", i, details={"pad": "x" * 200})
        for i in range(n)
    ]


def test_a_full_disk_refuses_the_whole_write_and_leaves_no_torn_line() -> None:
    with small_tmpfs(64 * 1024) as where:
        spool = AlertSpool(where / "alerts.spool")
        spool.add(alerts(3))
        filler = fill(where)
        with pytest.raises(OSError):
            spool.add(alerts(200))
        assert spool.count == 3
        assert len(list(AlertSpool(where / "alerts.spool").load())) == 3
        filler.unlink()
        spool.add(alerts(100))  # space is back
        assert [a.time_ms for a in AlertSpool(where / "alerts.spool").load()] == [
            0,
            1,
            2,
            *range(100),
        ]
