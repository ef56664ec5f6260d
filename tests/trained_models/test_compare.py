"""Comparing two runs side by side (apps/learning/compare_pages.py, compare.py): the spec diff
with its changed lines marked, a unified diff for code, both curves in the page's data, each
run's metrics and confusion matrix; only for two runs the viewer may both see (else 404)."""

import json
import re

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from apps.jobs.models import Submission
from apps.learning.compare import DiffRow, side_by_side, spec_lines, unified
from apps.tenants.models import Role
from tests.conftest import page_client_for
from tests.factories import (
    AssignmentFactory,
    EnrollmentFactory,
    ExerciseFactory,
    JobEventFactory,
    MembershipFactory,
)
from tests.models_support import SPECS, stored_model

pytestmark = pytest.mark.django_db

NARROW = {
    **SPECS["digits"],
    "layers": [
        {"type": "linear", "out_features": 16},
        {"type": "relu"},
        {"type": "linear", "out_features": 10},
    ],
    "training": {"optimizer": {"type": "sgd", "lr": 0.01}, "epochs": 5, "batch_size": 64},
}


def test_spec_lines_and_the_side_by_side_diff():
    a, b = spec_lines(SPECS["digits"]), spec_lines(NARROW)
    assert a == [
        "layer 1: linear (out_features=32)",
        "layer 2: relu",
        "layer 3: linear (out_features=10)",
        "training.batch_size: 64",
        "training.epochs: 5",
        "training.optimizer.lr: 0.01",
        'training.optimizer.type: "adam"',
    ]
    assert side_by_side(a, b) == [
        DiffRow(a[0], "layer 1: linear (out_features=16)", "changed"),
        DiffRow(a[1], a[1], "same"),
        DiffRow(a[2], a[2], "same"),
        DiffRow(a[3], a[3], "same"),
        DiffRow(a[4], a[4], "same"),
        DiffRow(a[5], a[5], "same"),
        DiffRow(a[6], 'training.optimizer.type: "sgd"', "changed"),
    ]
    assert side_by_side(["x"], ["x", "y"]) == [
        DiffRow("x", "x", "same"),
        DiffRow(None, "y", "added"),
    ]
    assert side_by_side(["x", "y"], ["y"]) == [
        DiffRow("x", None, "removed"),
        DiffRow("y", "y", "same"),
    ]


def test_unified_diff_of_code():
    assert unified(["a", "b"], ["a", "c"], a_name="A", b_name="B") == [
        ("--- A", "file"),
        ("+++ B", "file"),
        ("@@ -1,2 +1,2 @@", "hunk"),
        (" a", "same"),
        ("-b", "removed"),
        ("+c", "added"),
    ]
    assert unified(["a"], ["a"], a_name="A", b_name="B") == []


@pytest.fixture
def runs(tenant_a):
    """Two of the learner's digits runs (the spec's first layer and optimizer differ), each with
    two progress points; another learner's run of the same assignment."""
    world = tenant_a
    assignment = AssignmentFactory(
        exercise=ExerciseFactory(
            course=world.course, dataset="digits", title="Digits", starter_spec=SPECS["digits"]
        )
    )
    a = stored_model(world, dataset="digits", trained=False, assignment=assignment, attempt=1)
    b = stored_model(
        world, dataset="digits", trained=False, assignment=assignment, attempt=2, spec=NARROW
    )
    other = MembershipFactory(tenant=world.tenant, role=Role.LEARNER).user
    EnrollmentFactory(course=world.course, user=other)
    theirs = stored_model(
        world, dataset="digits", trained=False, assignment=assignment, learner=other
    )
    for model, losses in ((a, (2.0, 1.0)), (b, (1.5, 0.5))):
        for seq, (step, loss) in enumerate(zip((5, 10), losses, strict=True), start=4):
            JobEventFactory(
                job=model.submission.job,
                seq=seq,
                attempt=1,
                type="progress",
                payload={
                    "epoch": step // 5,
                    "epochs": 2,
                    "step": step,
                    "steps": 10,
                    "loss": loss,
                    "val_accuracy": loss / 4,
                },
            )
    return world, a, b, theirs


def _url(world, a, b, slug=None):
    return reverse("models-compare", kwargs={"tenant_slug": slug or world.tenant.slug}) + (
        f"?a={a}&b={b}"
    )


def test_two_spec_runs_side_by_side(runs):
    world, a, b, _theirs = runs
    response = page_client_for(world.learner.user).get(
        _url(world, a.submission_id, b.submission_id)
    )
    assert response.status_code == 200
    html = response.content.decode()
    diff = html.split('id="spec-diff"', 1)[1].split("</table>", 1)[0]
    changed = re.findall(
        r'<tr class="changed"><td>changed</td><td class="a">([^<]*)</td><td class="b">([^<]*)</td>',
        diff,
    )
    assert changed == [
        ("layer 1: linear (out_features=32)", "layer 1: linear (out_features=16)"),
        ("training.optimizer.type: &quot;adam&quot;", "training.optimizer.type: &quot;sgd&quot;"),
    ]
    assert diff.count('<tr class="same">') == 5
    curves = json.loads(
        html.split('<script id="compare-curves" type="application/json">', 1)[1].split(
            "</script>", 1
        )[0]
    )
    assert curves["runs"] == [
        {
            "label": "A: Digits, attempt 1",
            "x": [1.0, 2.0],
            "loss": [2.0, 1.0],
            "accuracy": [0.5, 0.25],
        },
        {
            "label": "B: Digits, attempt 2",
            "x": [1.0, 2.0],
            "loss": [1.5, 0.5],
            "accuracy": [0.375, 0.125],
        },
    ]
    metrics = html.split('id="compare-metrics"', 1)[1].split("</table>", 1)[0]
    # The grades' metrics are the factory's ({"accuracy": 0.86}); parameters and sizes the models'.
    assert "<td>0.8600</td><td>0.8600</td>" in metrics
    assert f"<td>{a.parameter_count}</td><td>{b.parameter_count}</td>" in metrics
    assert a.parameter_count == 64 * 32 + 32 + 32 * 10 + 10
    assert b.parameter_count == 64 * 16 + 16 + 16 * 10 + 10
    assert 'id="confusion-a"' not in html  # those grades have no confusion matrix


def test_the_kept_models_metrics_and_confusion_matrices_when_the_grades_have_them(runs):
    world, a, b, _theirs = runs
    with scopes_disabled():
        for model in (a, b):
            type(model.submission.grade).objects.filter(submission=model.submission).update(
                metrics=model.metrics
            )
    html = (
        page_client_for(world.learner.user)
        .get(_url(world, a.submission_id, b.submission_id))
        .content.decode()
    )
    for letter, model in (("a", a), ("b", b)):
        table = html.split(f'id="confusion-{letter}"', 1)[1].split("</table>", 1)[0]
        cells = [int(c) for c in re.findall(r'style="--share: [^"]*">(\d+)</td>', table)]
        assert cells == [n for row in model.metrics["confusion_matrix"] for n in row]
    metrics = html.split('id="compare-metrics"', 1)[1].split("</table>", 1)[0]
    assert f"<td>{a.metrics['accuracy']:.4f}</td><td>{b.metrics['accuracy']:.4f}</td>" in metrics
    assert metrics.count('<tr class="per-class">') == 10


def test_code_runs_get_a_unified_diff(runs):
    world, a, b, _theirs = runs
    with scopes_disabled():
        Submission.objects.filter(pk=a.submission_id).update(
            kind="code", spec=None, code="def build_model():\n    return 1\n"
        )
        Submission.objects.filter(pk=b.submission_id).update(
            kind="code", spec=None, code="def build_model():\n    return 2\n"
        )
    html = (
        page_client_for(world.learner.user)
        .get(_url(world, a.submission_id, b.submission_id))
        .content.decode()
    )
    code = html.split('<pre class="diff" id="code-diff">', 1)[1].split("</pre>", 1)[0]
    assert re.findall(r'<span class="(\w+)">([^<]*)</span>', code) == [
        ("file", "--- A: Digits, attempt 1"),
        ("file", "+++ B: Digits, attempt 2"),
        ("hunk", "@@ -1,2 +1,2 @@"),
        ("same", " def build_model():"),
        ("removed", "-    return 1"),
        ("added", "+    return 2"),
    ]


def test_a_teacher_compares_two_learners_runs(runs):
    world, a, _b, theirs = runs
    response = page_client_for(world.teacher.user).get(
        _url(world, a.submission_id, theirs.submission_id)
    )
    assert response.status_code == 200


def test_comparing_a_run_one_may_not_see_is_404(runs, tenant_b):
    world, a, b, theirs = runs
    learner = page_client_for(world.learner.user)
    assert learner.get(_url(world, a.submission_id, theirs.submission_id)).status_code == 404
    assert learner.get(_url(world, theirs.submission_id, a.submission_id)).status_code == 404
    assert learner.get(_url(world, a.submission_id, "nonsense")).status_code == 404
    assert learner.get(_url(world, a.submission_id, tenant_b.submission.id)).status_code == 404
    base = reverse("models-compare", kwargs={"tenant_slug": world.tenant.slug})
    assert learner.get(f"{base}?a={a.submission_id}").status_code == 404
    # Another tenant's people, with this tenant's ids, under either slug.
    for user in (tenant_b.learner.user, tenant_b.teacher.user):
        client = page_client_for(user)
        assert client.get(_url(world, a.submission_id, b.submission_id)).status_code == 404
        assert (
            client.get(
                _url(world, a.submission_id, b.submission_id, slug=tenant_b.tenant.slug)
            ).status_code
            == 404
        )
    other_teacher = MembershipFactory(tenant=world.tenant, role=Role.TEACHER).user
    assert (
        page_client_for(other_teacher)
        .get(_url(world, a.submission_id, b.submission_id))
        .status_code
        == 404
    )
