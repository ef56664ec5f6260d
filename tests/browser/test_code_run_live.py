"""A learner watches a CODE submission train, live, in a real browser (uvicorn with websockets,
a real Celery worker, the real sandbox): the progress bar moves, the loss and accuracy curves
get points, and the status reads "epoch n of N" with the run's own numbers. (The sandbox used
to drop `epochs` and `steps` from a code run's points: "epoch 1 of undefined", a bar stuck at
0 and empty curves.)"""

import re

import pytest
from django_scopes import scopes_disabled
from playwright.sync_api import Page, expect

from apps.courses.models import Exercise
from tests.browser.test_pages import _log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EPOCHS = 12  # 38 steps each: long enough to be watched while it trains
DIGITS_TRAINING = {
    "version": 1,
    "layers": [{"type": "linear", "out_features": 10}],
    "training": {"optimizer": {"type": "adam", "lr": 0.01}, "epochs": EPOCHS,
                 "batch_size": 32, "seed": 0},
}  # fmt: skip
DIGITS_CODE = """\
from torch import nn


def build_model(input_shape, num_classes):
    return nn.Sequential(nn.Linear(input_shape[0], 32), nn.ReLU(), nn.Linear(32, num_classes))
"""
DEADLINE_MS = 240_000


@pytest.fixture
def server_url(asgi_server) -> str:
    return asgi_server


def _progress_is_between(page: Page, low: float, high: float) -> None:
    page.wait_for_function(
        "([low, high]) => { const v = document.getElementById('run-progress').value;"
        " return v > low && v < high; }",
        arg=[low, high],
        timeout=DEADLINE_MS,
    )


@pytest.mark.timeout(600)
def test_a_code_runs_page_shows_its_bar_and_both_curves_moving_and_epoch_n_of_n(
    page: Page, server_url, tenant_a, celery_worker_process
):
    with scopes_disabled():
        Exercise.objects.filter(pk=tenant_a.exercise.pk).update(
            dataset="digits", allow_code=True, starter_code=DIGITS_CODE,
            starter_spec=DIGITS_TRAINING, target_metric=0.9, max_seconds=600,
        )  # fmt: skip
    _log_in(page, tenant_a.learner.user.email)
    page.goto(f"/t/alpha/assignments/{tenant_a.assignment.id}/")
    page.get_by_role("tab", name="PyTorch code").click()
    expect(page.get_by_label(re.compile("PyTorch code: define"))).to_have_value(DIGITS_CODE)
    page.get_by_role("button", name="Submit and train").click()
    expect(page).to_have_url(re.compile(r"/t/alpha/runs/[0-9a-f-]{36}/$"), timeout=30_000)

    status = page.locator("#run-status")
    training = re.compile(rf"^Training: epoch ([1-9]\d*) of {EPOCHS}, loss \d+\.\d{{4}}$")
    expect(status).to_have_text(training, timeout=DEADLINE_MS)
    epoch = int(training.match(status.text_content()).group(1))
    assert 1 <= epoch <= EPOCHS
    # Mid-run: the bar has moved off 0 and not yet reached 1, both curves have points.
    _progress_is_between(page, 0.0, 1.0)
    points = re.compile(r"^[1-9]\d*$")
    for chart in ("#loss-chart", "#accuracy-chart"):
        expect(page.locator(chart)).to_have_attribute("data-points", points)
    first = page.evaluate("document.getElementById('run-progress').value")
    # It keeps moving: further on, later epochs, more points.
    _progress_is_between(page, first, 1.01)
    this_epoch = re.compile(rf"^Training: epoch {epoch} of {EPOCHS},")
    expect(status).not_to_have_text(this_epoch, timeout=DEADLINE_MS)

    expect(page.locator("#grade")).to_contain_text("/ 100.00", timeout=DEADLINE_MS)
    expect(page.locator("#run-progress")).to_have_js_property("value", 1)
    for chart in ("#loss-chart", "#accuracy-chart"):
        count = int(page.locator(chart).get_attribute("data-points"))
        assert count >= EPOCHS  # at least every epoch end
    # The accuracy curve drew every epoch end's validation accuracy: uPlot's path is there.
    expect(page.locator("#accuracy-chart canvas")).to_have_count(1)
