"""Long answers keep to their share of a core and fail whole before their status is sent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.long_answers import LongAnswers, Piece, fresh


class FakeTime:
    """CPU time that advances only as the work says it costs; a clock that advances with it
    and with every sleep."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.now = 0.0
        self.sleeps: list[float] = []

    def spend(self, seconds: float) -> None:
        self.cpu += seconds
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def answers(self, share: float) -> LongAnswers:
        return LongAnswers(
            share, cpu_time=lambda: self.cpu, clock=lambda: self.now, sleep=self.sleep
        )


def costly(fake: FakeTime, costs: list[float]) -> Iterator[Piece]:
    def pieces() -> Iterator[bytes]:
        for i, cost in enumerate(costs):
            fake.spend(cost)
            yield f"{i};".encode()

    return fresh(pieces())


async def body_of(
    answers: LongAnswers, pieces: Iterator[Piece], kept: list[list[Piece]] | None = None
) -> bytes:
    response = await answers.stream(pieces, written=None if kept is None else kept.append)
    return b"".join([piece async for piece in response.body_iterator])  # type: ignore[misc]


async def test_each_piece_waits_out_the_pause_of_the_one_before() -> None:
    fake = FakeTime()
    answers = fake.answers(0.25)
    assert await body_of(answers, costly(fake, [0.004, 0.002, 0.001])) == b"0;1;2;"
    # before each piece the pause of the one before, and before learning there is no more
    assert fake.sleeps == pytest.approx([0.012, 0.006, 0.003])


async def test_a_read_charged_holds_the_next_piece() -> None:
    fake = FakeTime()
    answers = fake.answers(0.5)

    async def read() -> str:
        fake.spend(0.1)
        answers.charge(0.1)
        return "rows"

    assert await answers.read(read) == "rows"
    await body_of(answers, costly(fake, [0.002, 0.002]))
    assert fake.sleeps == pytest.approx([0.1, 0.002, 0.002])


async def test_an_answer_written_before_is_sent_at_the_pace_it_was_written() -> None:
    fake = FakeTime()
    answers = fake.answers(0.25)
    kept: list[list[Piece]] = []
    first = await body_of(answers, costly(fake, [0.004, 0.002]), kept)
    assert kept == [[(b"0;", pytest.approx(0.004)), (b"1;", pytest.approx(0.002))]]
    fake.sleeps.clear()
    fake.now += 1.0  # long after: no pause owed
    assert await body_of(answers, iter(kept[0])) == first
    assert fake.sleeps == pytest.approx([0.012, 0.006])


async def test_a_whole_core_never_pauses() -> None:
    fake = FakeTime()
    answers = fake.answers(1.0)
    answers.charge(0.5)
    assert await body_of(answers, costly(fake, [0.01, 0.01])) == b"0;1;"
    assert fake.sleeps == []


async def test_a_first_piece_that_fails_fails_the_answer_before_it_is_sent() -> None:
    def failing() -> Iterator[bytes]:
        raise ValueError("Out of range float values are not JSON compliant")
        yield b""  # pragma: no cover - a generator that fails at once

    with pytest.raises(ValueError):
        await LongAnswers().stream(fresh(failing()))


def test_a_share_outside_one_core_is_refused() -> None:
    for share in (0.0, -1.0, 1.5):
        with pytest.raises(ValueError):
            LongAnswers(share)
