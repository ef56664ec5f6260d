"""Progress points: the one definition checks what crosses a boundary (a learner's sandbox may
send anything), and the ETA measures the time per step after the warm-up, on a fake clock."""

import math

import jsonschema
import pytest

from runtime.progress import (
    FIELDS,
    JSON_SCHEMA,
    WARMUP_SECONDS,
    WARMUP_STEPS,
    Eta,
    ProgressInvalid,
    ProgressPoint,
)
from runtime.sandbox.supervise import progress_point

GOOD = {
    "epoch": 2,
    "epochs": 4,
    "step": 50,
    "steps": 100,
    "epoch_end": True,
    "loss": 0.5,
    "train_accuracy": 0.75,
    "val_accuracy": 0.7,
    "val_loss": 0.6,
    "lr": 0.01,
    "samples_per_second": 640.0,
    "elapsed": 5.0,
    "eta": 5.0,
}


def test_a_point_comes_out_with_every_field_and_its_fraction_done():
    payload = ProgressPoint.from_untrusted({**GOOD, "unknown": "dropped"}).as_payload()
    assert payload == {**GOOD, "fraction_done": 0.5}
    assert tuple(payload) == FIELDS
    jsonschema.validate(payload, JSON_SCHEMA)


def test_a_measurement_that_is_not_a_finite_number_in_range_becomes_null():
    raw = {
        **GOOD,
        "loss": math.nan,
        "train_accuracy": 1.5,
        "val_accuracy": "0.7",
        "val_loss": -1.0,
        "lr": True,
        "samples_per_second": math.inf,
        "elapsed": [1],
        "eta": None,
    }
    payload = ProgressPoint.from_untrusted(raw).as_payload()
    assert payload == {
        **GOOD,
        "loss": None,
        "train_accuracy": None,
        "val_accuracy": None,
        "val_loss": None,
        "lr": None,
        "samples_per_second": None,
        "elapsed": None,
        "eta": None,
        "fraction_done": 0.5,
    }
    jsonschema.validate(payload, JSON_SCHEMA)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"epochs": None}, "epochs must be an integer, not None."),
        ({"steps": "100"}, "steps must be an integer, not '100'."),
        ({"step": True}, "step must be an integer, not True."),
        ({"epoch": 5}, "epoch must be an integer from 1 to 4, not 5."),
        ({"epoch": 0}, "epoch must be an integer from 1 to 4, not 0."),
        ({"step": 101}, "step must be an integer from 0 to 100, not 101."),
        ({"steps": 2**31}, "steps must be an integer from 1 to 2147483647, not 2147483648."),
        ({"epoch_end": 1}, "epoch_end must be true or false, not 1."),
        ({"epoch_end": None}, "epoch_end must be true or false, not None."),
    ],
)
def test_a_point_whose_counts_do_not_hold_together_is_refused(change, message):
    with pytest.raises(ProgressInvalid) as raised:
        ProgressPoint.from_untrusted({**GOOD, **change})
    assert str(raised.value) == message
    # The sandbox drops such a point rather than forwarding it.
    assert progress_point({**GOOD, **change}) is None


def test_counts_written_as_whole_floats_are_read_as_integers():
    payload = ProgressPoint.from_untrusted({**GOOD, "epoch": 2.0, "steps": 100.0}).as_payload()
    assert (payload["epoch"], payload["steps"]) == (2, 100)
    assert progress_point({**GOOD, "epoch": 2.5}) is None


@pytest.mark.parametrize("raw", [None, [GOOD], "point", 3])
def test_a_point_that_is_not_an_object_is_refused(raw):
    with pytest.raises(ProgressInvalid, match="A progress point must be an object"):
        ProgressPoint.from_untrusted(raw)


def test_the_json_schema_names_exactly_the_fields_of_a_point():
    assert set(JSON_SCHEMA["properties"]) == set(FIELDS)
    assert JSON_SCHEMA["required"] == list(FIELDS)


# --- ETA ----------------------------------------------------------------------------------------


def _steps(eta: Eta, times: list[float]) -> None:
    for step, now in enumerate(times, start=1):
        eta.step(step, now)


def test_the_eta_ignores_the_slow_warm_up_steps():
    # 1000 steps; the first three take 3 s each (lazy setup), then 0.1 s each. Started at 0.
    eta = Eta(total_steps=1000, started=0.0)
    times = [3.0, 6.0, 9.0] + [9.0 + 0.1 * k for k in range(1, 98)]
    _steps(eta, times)
    # Warm-up: at least WARMUP_STEPS (5) steps and WARMUP_SECONDS (1 s): it ends at step 5.
    assert (WARMUP_STEPS, WARMUP_SECONDS) == (5, 1.0)
    assert eta.mark == (5, pytest.approx(9.2))
    # At step 100 (t = 18.7): 95 steps in 9.5 s since the mark, 0.1 s each, 900 left.
    assert eta.seconds_left(100, times[-1]) == pytest.approx(90.0)
    # Over the whole run (18.7 s for 100 steps) it would have said 168 s.


def test_the_eta_is_unknown_during_the_warm_up_and_at_its_mark():
    eta = Eta(total_steps=100, started=10.0)
    _steps(eta, [10.1, 10.2, 10.3, 10.4, 10.5, 10.6])  # 6 steps, but only 0.6 s
    assert (eta.mark, eta.seconds_left(6, 10.6)) == (None, None)
    eta.step(7, 11.0)  # 1 s since the start: the warm-up ends here
    assert eta.mark == (7, 11.0)
    assert eta.seconds_left(7, 11.0) is None  # no step measured after it yet
    eta.step(8, 11.5)
    assert eta.seconds_left(8, 11.5) == pytest.approx(0.5 * 92)


def test_the_eta_is_zero_when_every_step_is_done_and_capped_by_the_deadline():
    eta = Eta(total_steps=10, started=0.0)
    assert eta.seconds_left(10, 0.5) == 0.0  # even before any measurement
    budgeted = Eta(total_steps=1000, started=0.0, deadline=30.0)
    _steps(budgeted, [1.0 * k for k in range(1, 11)])  # 1 s a step; 990 steps left
    assert budgeted.seconds_left(10, 10.0) == 20.0  # the time budget stops it at t = 30
