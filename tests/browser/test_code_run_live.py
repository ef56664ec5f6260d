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
    "training": {
        "optimizer": {"type": "adam", "lr": 0.01},
        "epochs": EPOCHS,
        "batch_size": 32,
        "seed": 0,
    },
}
DIGITS_CODE = """\
from torch import nn


def build_model(input_shape, num_classes):
    return nn.Sequential(nn.Linear(input_shape[0], 32), nn.ReLU(), nn.Linear(32, num_classes))
"""
DEADLINE_MS = 240_000


@pytest.fixture
def server_url(asgi_server) -> str:
    return asgi_server


# Notes every value the bar and the status take, as the page's script sets them: the test reads
# the whole sequence afterwards, so it does not race a run that is quicker than its polling.
RECORDER = """
window.__seen = [];
document.addEventListener("DOMContentLoaded", () => {
  const bar = document.getElementById("run-progress");
  const status = document.getElementById("run-status");
  if (!bar || !status) return;
  const curve = document.getElementById("loss-chart");
  const note = () => window.__seen.push([bar.value, status.textContent, curve.dataset.points]);
  new MutationObserver(note).observe(bar, { attributes: true });
  const text = { childList: true, characterData: true, subtree: true };
  new MutationObserver(note).observe(status, text);
});
"""


@pytest.mark.timeout(600)
def test_a_code_runs_page_shows_its_bar_and_both_curves_moving_and_epoch_n_of_n(
    page: Page, server_url, tenant_a, celery_worker_process
):
    with scopes_disabled():
        Exercise.objects.filter(pk=tenant_a.exercise.pk).update(
            dataset="digits",
            allow_code=True,
            starter_code=DIGITS_CODE,
            starter_spec=DIGITS_TRAINING,
            target_metric=0.9,
            max_seconds=600,
        )
    _log_in(page, tenant_a.learner.user.email)
    page.goto(f"/t/alpha/assignments/{tenant_a.assignment.id}/")
    page.add_init_script(RECORDER)
    page.get_by_role("tab", name="PyTorch code").click()
    expect(page.get_by_label(re.compile("PyTorch code: define"))).to_have_value(DIGITS_CODE)
    page.get_by_role("button", name="Submit and train").click()
    expect(page).to_have_url(re.compile(r"/t/alpha/runs/[0-9a-f-]{36}/$"), timeout=30_000)

    expect(page.locator("#grade")).to_contain_text("/ 100.00", timeout=DEADLINE_MS)
    seen = page.evaluate("window.__seen")
    training = re.compile(rf"^Training: epoch ([1-9]\d*) of {EPOCHS}, loss \d+\.\d{{4}}$")
    epochs = [int(m.group(1)) for _, text, _ in seen if (m := training.match(text))]
    # "epoch n of N" with the run's numbers, n rising through the run.
    assert len(set(epochs)) >= 3 and epochs == sorted(epochs) and max(epochs) <= EPOCHS, seen
    # The bar moved: several values strictly between 0 and 1, never going back, then full.
    moving = [value for value, _, _ in seen if 0 < value < 1]
    assert len(set(moving)) >= 3 and moving == sorted(moving), seen
    # The curves grew with it: the loss curve's point count at each of those moments.
    drawn = [int(points) for value, _, points in seen if 0 < value < 1]
    assert len(set(drawn)) >= 3 and drawn == sorted(drawn), seen
    expect(page.locator("#run-progress")).to_have_js_property("value", 1)
    for chart in ("#loss-chart", "#accuracy-chart"):
        count = int(page.locator(chart).get_attribute("data-points"))
        assert count >= EPOCHS  # at least every epoch end
    # The accuracy curve drew every epoch end's validation accuracy: uPlot's path is there.
    expect(page.locator("#accuracy-chart canvas")).to_have_count(1)
