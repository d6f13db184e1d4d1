"""The spot finder behind `gathering`: borrowers, radius, window, known spots, one proposal."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trajectory.gathering import GatheringSettings, SpotFinder, Visit

HOUR = 3_600_000
DAY = 24 * HOUR
SPOT = (121.5, 31.3)
M = 1 / 111_320  # a metre of latitude, in degrees


def visit(i: int, *, borrower: str | None = None, north_m: float = 0.0, day: int = 0) -> Visit:
    t = day * DAY + i * HOUR
    return Visit(
        t, t - 2 * HOUR, SPOT[0], SPOT[1] + north_m * M, f"D{i}", f"V{i}", borrower or f"B{i}"
    )


def test_the_fifth_borrower_proposes_the_place_with_the_visits_as_evidence() -> None:
    finder = SpotFinder()
    assert finder.add(visit(i, north_m=20 * i) for i in range(4)) == []
    [spot] = finder.add([visit(4, north_m=80)])
    assert spot.time_ms == visit(4).time_ms and spot.trigger.device == "D4"
    assert spot.borrowers == 5 and [v.vehicle for v in spot.visits] == [f"V{i}" for i in range(5)]
    assert abs(spot.lat - (SPOT[1] + 40 * M)) < 1e-9


def test_cars_of_one_borrower_count_once() -> None:
    finder = SpotFinder()
    visits = [visit(i, borrower="B0" if i < 3 else None) for i in range(6)]
    found = finder.add(visits)
    assert [s.trigger.device for s in found] == []  # B0, B3, B4, B5: four borrowers
    assert len(finder.add([visit(6)])) == 1


def test_visits_beyond_the_radius_or_the_window_do_not_count() -> None:
    finder = SpotFinder(GatheringSettings(radius_m=150))
    assert finder.add([visit(i, north_m=400 * i) for i in range(6)]) == []
    finder = SpotFinder()
    assert finder.add([visit(i, day=20 * i) for i in range(6)]) == []


def test_a_known_spot_is_not_proposed_and_a_place_is_proposed_once() -> None:
    known = SpotFinder(known=lambda lon, lat, r: True)
    assert known.add(visit(i) for i in range(8)) == []
    finder = SpotFinder()
    assert len(finder.add(visit(i) for i in range(12))) == 1


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 9), st.integers(0, 300)), min_size=1, max_size=30),
    st.lists(st.integers(1, 30), max_size=5),
)
def test_proposals_do_not_depend_on_how_the_visits_are_handed_over(
    raw: list[tuple[int, int]], cuts: list[int]
) -> None:
    visits = sorted(
        (visit(i, north_m=n, day=k) for k, (i, n) in enumerate(raw)), key=Visit.sort_key
    )
    whole = SpotFinder().add(visits)
    finder, parts, start = SpotFinder(), [], 0
    for cut in [*sorted(cuts), len(visits)]:
        parts += finder.add(visits[start:cut])
        start = max(start, cut)
    assert parts == whole


def test_the_completing_cars_own_radius_window_and_borrowers_decide() -> None:
    """A visit carrying its car's thresholds is judged by them: a wider radius than the
    finder's cells, a longer window (older visits are kept for it) and fewer borrowers."""
    own = GatheringSettings(cars=3, radius_m=600.0, window_ms=30 * DAY)
    far = [visit(0, north_m=0, day=0), visit(1, north_m=450, day=20)]
    assert SpotFinder().add([*far, visit(2, north_m=225, day=21)]) == []  # 150 m, 14 days
    mine = visit(2, north_m=225, day=21)
    mine = Visit(mine.time_ms, mine.arrived_ms, mine.lon, mine.lat, "D2", "V2", "B2", own)
    [spot] = SpotFinder().add([*far, mine])
    assert spot.borrowers == 3 and spot.radius_m == 600.0
