"""Prefetched history pages: the same pages in order, the reader's error raised in order,
and closing early stops the reader."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from positions import empty_batch
from store.history import HistoryPage, prefetched
from store.interface import PositionPage


def _pages(
    n: int, fail_at: int | None = None, read: list[int] | None = None
) -> Iterator[HistoryPage]:
    for i in range(n):
        if i == fail_at:
            raise RuntimeError("database went away")
        if read is not None:
            read.append(i)
        yield HistoryPage(PositionPage(empty_batch(), [], 0), i, i + 1)


def test_the_same_pages_in_order() -> None:
    assert [p.from_ms for p in prefetched(_pages(20))] == list(range(20))


def test_an_error_of_the_reader_comes_after_the_pages_before_it() -> None:
    pages = prefetched(_pages(10, fail_at=4))
    assert [next(pages).from_ms for _ in range(4)] == [0, 1, 2, 3]
    with pytest.raises(RuntimeError, match="went away"):
        next(pages)


def test_closing_early_stops_the_reader() -> None:
    read: list[int] = []
    before = threading.active_count()
    pages = prefetched(_pages(1000, read=read), ahead=2)
    assert next(pages).from_ms == 0
    pages.close()
    assert threading.active_count() == before
    assert len(read) < 10
