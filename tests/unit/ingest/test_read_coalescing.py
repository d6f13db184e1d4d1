"""Read coalescing turns on above its rate and off below it, and always lets the loop run."""

from __future__ import annotations

import asyncio

from ingest.read_coalescing import CHECK_S, ReadCoalescing


def test_busy_above_the_rate_idle_below_it_and_the_loop_keeps_turning() -> None:
    async def main() -> None:
        count = {"taken": 0, "passes": 0}
        coalescing = ReadCoalescing(lambda: count["taken"], interval_s=0.001, busy_per_s=1000)
        task = asyncio.create_task(coalescing.run())

        async def traffic(per_pass: int, seconds: float) -> None:
            loop = asyncio.get_running_loop()
            until = loop.time() + seconds
            while loop.time() < until:
                count["taken"] += per_pass
                count["passes"] += 1
                await asyncio.sleep(0.005)

        await traffic(100, 3 * CHECK_S)  # about 20,000 reports/s
        assert coalescing.busy
        passes = count["passes"]
        await traffic(100, 3 * CHECK_S)  # busy: the loop still runs every other task
        assert coalescing.busy
        assert count["passes"] - passes >= 3 * CHECK_S / 0.005 / 2
        await traffic(0, 3 * CHECK_S)
        assert not coalescing.busy
        task.cancel()

    asyncio.run(main())
