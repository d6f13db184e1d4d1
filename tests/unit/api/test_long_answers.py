"""Long answers keep to their share of a core and fail whole before their status is sent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.long_answers import LongAnswers


class FakeCpu:
    """Thread CPU time that advances only as the pieces say they cost."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def costly(cpu: FakeCpu, costs: list[float]) -> Iterator[bytes]:
    for i, cost in enumerate(costs):
        cpu.now += cost
        yield f"{i};".encode()


async def body_of(answers: LongAnswers, pieces: Iterator[bytes]) -> bytes:
    response = await answers.stream(pieces)
    return b"".join([piece async for piece in response.body_iterator])  # type: ignore[misc]


async def test_each_piece_is_followed_by_a_pause_that_keeps_to_the_share() -> None:
    cpu = FakeCpu()
    answers = LongAnswers(0.25, cpu_time=cpu, sleep=cpu.sleep)
    assert await body_of(answers, costly(cpu, [0.004, 0.002, 0.001])) == b"0;1;2;"
    assert cpu.sleeps == pytest.approx([0.012, 0.006, 0.003])


async def test_reads_charged_are_paused_for_with_the_next_piece() -> None:
    cpu = FakeCpu()
    answers = LongAnswers(0.5, cpu_time=cpu, sleep=cpu.sleep)
    answers.charge(0.1)
    await body_of(answers, costly(cpu, [0.002, 0.002]))
    assert cpu.sleeps == pytest.approx([0.102, 0.002])


async def test_a_whole_core_never_pauses() -> None:
    cpu = FakeCpu()
    answers = LongAnswers(1.0, cpu_time=cpu, sleep=cpu.sleep)
    answers.charge(0.5)
    assert await body_of(answers, costly(cpu, [0.01, 0.01])) == b"0;1;"
    assert cpu.sleeps == []


async def test_a_first_piece_that_fails_fails_the_answer_before_it_is_sent() -> None:
    def failing() -> Iterator[bytes]:
        raise ValueError("Out of range float values are not JSON compliant")
        yield b""  # pragma: no cover - a generator that fails at once

    with pytest.raises(ValueError):
        await LongAnswers().stream(failing())


def test_a_share_outside_one_core_is_refused() -> None:
    for share in (0.0, -1.0, 1.5):
        with pytest.raises(ValueError):
            LongAnswers(share)
