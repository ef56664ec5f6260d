"""The job state machine: every allowed transition passes, every other one raises."""

import pytest

from apps.jobs.states import (
    FINAL_STATES,
    TRANSITIONS,
    InvalidTransition,
    JobState,
    transition_check,
)

ALLOWED = [
    (current, target) for current, targets in TRANSITIONS.items() for target in sorted(targets)
]
FORBIDDEN = [
    (current, target)
    for current in JobState.values
    for target in JobState.values
    if target not in TRANSITIONS[current]
]


def test_the_machine_is_the_documented_one():
    assert ALLOWED and set(TRANSITIONS) == set(JobState.values)
    assert sorted(ALLOWED) == sorted(
        [
            ("queued", "running"),
            ("queued", "cancelled"),
            ("queued", "failed"),
            ("running", "queued"),
            ("running", "succeeded"),
            ("running", "failed"),
            ("running", "cancelled"),
            ("running", "timed_out"),
        ]
    )
    assert set(FINAL_STATES) == {"succeeded", "failed", "cancelled", "timed_out"}
    assert all(not TRANSITIONS[state] for state in FINAL_STATES)


@pytest.mark.parametrize("current, target", ALLOWED, ids=lambda s: str(s))
def test_an_allowed_transition_passes(current, target):
    assert transition_check(current, target) is None


@pytest.mark.parametrize(
    "current, target, message",
    [
        ("succeeded", "running", "A job cannot go from succeeded to running."),
        ("queued", "succeeded", "A job cannot go from queued to succeeded."),
        ("cancelled", "queued", "A job cannot go from cancelled to queued."),
        ("queued", "queued", "A job cannot go from queued to queued."),
        ("running", "running", "A job cannot go from running to running."),
        ("failed", "running", "A job cannot go from failed to running."),
        ("timed_out", "queued", "A job cannot go from timed_out to queued."),
    ],
)
def test_a_forbidden_transition_raises_with_its_message(current, target, message):
    with pytest.raises(InvalidTransition) as raised:
        transition_check(current, target)
    assert str(raised.value) == message
    assert (raised.value.current, raised.value.target) == (current, target)


@pytest.mark.parametrize("current, target", FORBIDDEN, ids=lambda s: str(s))
def test_every_transition_not_listed_raises(current, target):
    with pytest.raises(InvalidTransition):
        transition_check(current, target)
