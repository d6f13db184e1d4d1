"""Any sequence of requested moves: the lifecycle only ever goes forward, and a refused move
changes nothing (the (state, input) table checked pair by pair over random walks)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from alerts.lifecycle import ALLOWED, AlertState, TransitionError, opened, transition
from alerts.model import Alert, AlertType

ORDER = {AlertState.OPEN: 0, AlertState.ACKNOWLEDGED: 1, AlertState.RESOLVED: 2}
ALERT = Alert(AlertType.POWER_CUT, "013900000001", "V1", 0)


@given(
    st.lists(
        st.tuples(st.sampled_from(list(AlertState)), st.text(min_size=1, max_size=5)),
        max_size=12,
    )
)
def test_random_walks_move_forward_only_and_refusals_leave_the_alert_unchanged(
    moves: list[tuple[AlertState, str]],
) -> None:
    stored = opened(1, ALERT, 0)
    for now, (target, actor) in enumerate(moves, start=1):
        before = stored
        try:
            stored = transition(stored, target, actor, None, now)
        except TransitionError:
            assert (before.state, target) not in ALLOWED
            assert stored == before
            continue
        assert (before.state, target) in ALLOWED
        assert ORDER[stored.state] > ORDER[before.state]
        assert stored.updated_ms == now
        assert stored.alert == ALERT and stored.opened_ms == 0
    accepted = [s for s in (stored.acknowledged_by, stored.resolved_by) if s is not None]
    assert len(accepted) == ORDER[stored.state] or (
        stored.state is AlertState.RESOLVED and stored.acknowledged_by is None
    )
