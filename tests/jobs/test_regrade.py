"""Regrading an assignment from its stored models (apps/jobs/regrade.py): the teacher's button
publishes the task by name (read back from the broker's queue), the task (run here in-process
through its function: no worker, no training) grades every kept model again with the thresholds
as they are now, writes a revision per changed grade, keeps a teacher's override current, tells
learners on their dashboard, and changes nothing when run again."""

import base64
import json
from datetime import timedelta
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from apps.audit.models import AuditEntry
from apps.jobs.grading import grade_override
from apps.jobs.models import Grade, GradeRevision, Job, JobEvent, Regrade
from apps.jobs.regrade import assignment_regrade_start
from apps.jobs.tasks import regrade_assignment
from apps.learning.models import GradeNotice
from apps.tenants.access import tenant_access
from apps.tenants.models import Role
from apps.trained_models.services import artifacts_storage
from tests.conftest import page_client_for
from tests.factories import (
    AssignmentFactory,
    EnrollmentFactory,
    ExerciseFactory,
    MembershipFactory,
    graded_submission,
)
from tests.models_support import SPECS, stored_model

pytestmark = pytest.mark.django_db


def _queue() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def _published() -> list[tuple]:
    """The tasks waiting in the default queue, as (name, args), taken off it."""
    messages = []
    while (raw := _queue().rpop("default")) is not None:
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        messages.append((message["headers"]["task"], args))
    return messages


@pytest.fixture
def regrade_world(tenant_a):
    """A digits assignment with three submissions: the learner's kept model, another learner's
    kept model whose grade the teacher overrode to 55, and an attempt without a kept model.
    Each grade agrees with its model's metrics under the exercise's thresholds (0.0, 0.95)."""
    _published()
    world = tenant_a
    exercise = ExerciseFactory(
        course=world.course, dataset="digits", min_metric=0.0, starter_spec=SPECS["digits"]
    )
    assignment = AssignmentFactory(exercise=exercise)
    other = MembershipFactory(tenant=world.tenant, role=Role.LEARNER).user
    EnrollmentFactory(course=world.course, user=other)
    mine = stored_model(world, dataset="digits", trained=False, assignment=assignment)
    theirs = stored_model(
        world, dataset="digits", trained=False, assignment=assignment, learner=other
    )
    without = graded_submission(assignment=assignment, learner=world.learner.user, attempt=2)
    accuracy = mine.metrics["accuracy"]
    assert 0.01 < accuracy < 0.5, accuracy  # so the thresholds below give 100 and 0 exactly
    with scopes_disabled():
        for model in (mine, theirs):
            start = _score(accuracy, 0.0, 0.95)
            Grade.objects.filter(submission=model.submission).update(
                score=start, automatic_score=start, metrics=model.metrics
            )
            GradeRevision.objects.filter(grade__submission=model.submission).update(score=start)
        overridden = Grade.objects.get(submission=theirs.submission)
    with scope(tenant=world.tenant.id):
        grade_override(grade=overridden, by=world.teacher.user, score=Decimal("55"), reason="Oral")
    return world, assignment, mine, theirs, without, other


def _score(accuracy, low, high) -> Decimal:
    fraction = min(1.0, max(0.0, (accuracy - low) / (high - low)))
    return Decimal(str(100 * fraction)).quantize(Decimal("0.01"))


def _url(world, assignment, name="teach-regrade"):
    return reverse(
        name,
        kwargs={
            "tenant_slug": world.tenant.slug,
            "course_id": world.course.id,
            "assignment_id": assignment.id,
        },
    )


def _thresholds(assignment, low, high):
    with scopes_disabled():
        type(assignment.exercise).objects.filter(pk=assignment.exercise_id).update(
            min_metric=low, target_metric=high
        )


def _start(world, assignment, django_capture_on_commit_callbacks) -> Regrade:
    with django_capture_on_commit_callbacks(execute=True):
        response = page_client_for(world.teacher.user).post(_url(world, assignment))
    assert response.status_code == 302
    assert response["Location"] == _url(world, assignment, "teach-leaderboard")
    with scopes_disabled():
        regrade = Regrade.objects.filter(assignment=assignment).latest("created_at")
    assert _published() == [("jobs.regrade_assignment", [str(world.tenant.id), str(regrade.id)])]
    return regrade


def _history(submission):
    with scopes_disabled():
        return [
            (r.score, r.source, r.author_id, r.reason)
            for r in GradeRevision.objects.filter(grade__submission=submission).order_by(
                "created_at", "id"
            )
        ]


def _state(assignment):
    """Everything a regrade may write, to compare before and after."""
    with scopes_disabled():
        return {
            "grades": sorted(
                (str(g.submission_id), g.score, g.automatic_score, g.source, g.feedback)
                for g in Grade.objects.filter(submission__assignment=assignment)
            ),
            "revisions": GradeRevision.objects.filter(
                grade__submission__assignment=assignment
            ).count(),
            "notices": GradeNotice.objects.count(),
            "audit": AuditEntry.objects.filter(action="grade.regrade").count(),
            "regrades": Regrade.objects.count(),
            "jobs": Job.objects.count(),
            "events": JobEvent.objects.count(),
        }


def _run(world, regrade) -> Regrade:
    assert regrade_assignment(str(world.tenant.id), str(regrade.id)) == "done"
    with scopes_disabled():
        return Regrade.objects.get(id=regrade.id)


def _grade(submission) -> Grade:
    with scopes_disabled():
        return Grade.objects.get(submission=submission)


def _counts(regrade):
    return (regrade.state, regrade.regraded, regrade.unchanged, regrade.skipped, regrade.failed)


def test_unchanged_thresholds_change_nothing(regrade_world, django_capture_on_commit_callbacks):
    world, assignment, *_ = regrade_world
    before = _state(assignment)
    regrade = _run(world, _start(world, assignment, django_capture_on_commit_callbacks))
    assert _counts(regrade) == ("done", 0, 2, 1, 0)
    assert (regrade.min_metric, regrade.target_metric) == (0.0, 0.95)
    assert _state(assignment) == {**before, "regrades": before["regrades"] + 1}


def test_new_thresholds_regrade_from_the_stored_models_with_history_and_no_training(
    regrade_world, django_capture_on_commit_callbacks
):
    world, assignment, mine, theirs, without, _other = regrade_world
    teacher = world.teacher.user
    start = _score(mine.metrics["accuracy"], 0.0, 0.95)
    mine_history, theirs_history = _history(mine.submission), _history(theirs.submission)
    without_grade = _grade(without)
    before = _state(assignment)

    _thresholds(assignment, 0.0, 0.01)  # every model earns full marks now
    regrade = _run(world, _start(world, assignment, django_capture_on_commit_callbacks))

    assert _counts(regrade) == ("done", 2, 0, 1, 0)
    assert (regrade.min_metric, regrade.target_metric) == (0.0, 0.01)
    full = Decimal("100.00")
    graded = _grade(mine.submission)
    assert (graded.score, graded.automatic_score, graded.source) == (full, full, "automatic")
    assert graded.feedback.startswith(
        f"Test accuracy: {mine.metrics['accuracy'] * 100:.1f}% (0 points at 0.0%, full marks at "
        "1.0%).\n"
    )
    assert graded.metrics["accuracy"] == mine.metrics["accuracy"]
    reason = (
        "Regraded after the thresholds changed (0 points at 0.0%, full marks at 1.0%): the "
        f"automatic score went from {start} to 100.00."
    )
    assert _history(mine.submission) == [*mine_history, (full, "automatic", teacher.pk, reason)]
    # The teacher's override stays the current score; only the automatic score moved.
    kept = _grade(theirs.submission)
    assert (kept.score, kept.automatic_score, kept.source) == (Decimal("55.00"), full, "teacher")
    assert _history(theirs.submission) == [
        *theirs_history,
        (
            full,
            "automatic",
            teacher.pk,
            reason + " The teacher's override (55.00) stays the current score.",
        ),
    ]
    assert [h[:2] for h in theirs_history] == [(start, "automatic"), (Decimal("55.00"), "teacher")]
    # Skipped: no kept model.
    assert _grade(without).score == without_grade.score == Decimal("80.00")
    # No retraining: no job, no event.
    after = _state(assignment)
    assert (after["jobs"], after["events"]) == (before["jobs"], before["events"])
    with scopes_disabled():
        audits = list(
            AuditEntry.objects.filter(action="grade.regrade").values_list(
                "actor_id", "target_id", "before", "after"
            )
        )
        notices = list(
            GradeNotice.objects.values_list(
                "learner_id", "submission_id", "score_before", "score_after"
            )
        )
    assert sorted(audits, key=lambda a: a[1]) == sorted(
        [
            (
                teacher.pk,
                str(graded.id),
                {"score": str(start), "automatic_score": str(start), "source": "automatic"},
                {
                    "score": "100.00",
                    "automatic_score": "100.00",
                    "source": "automatic",
                    "regrade": str(regrade.id),
                },
            ),
            (
                teacher.pk,
                str(kept.id),
                {"score": "55.00", "automatic_score": str(start), "source": "teacher"},
                {
                    "score": "55.00",
                    "automatic_score": "100.00",
                    "source": "teacher",
                    "regrade": str(regrade.id),
                },
            ),
        ],
        key=lambda a: a[1],
    )
    # Only the learner whose current score changed is told.
    assert notices == [(world.learner.user.pk, mine.submission_id, start, full)]

    # Stricter thresholds: every model earns 0; a second revision each, in order.
    _thresholds(assignment, 0.99, 1.0)
    regrade = _run(world, _start(world, assignment, django_capture_on_commit_callbacks))
    assert _counts(regrade) == ("done", 2, 0, 1, 0)
    zero = Decimal("0.00")
    assert [h[0] for h in _history(mine.submission)] == [start, full, zero]
    assert [h[:2] for h in _history(theirs.submission)] == [
        (start, "automatic"),
        (Decimal("55.00"), "teacher"),
        (full, "automatic"),
        (zero, "automatic"),
    ]
    assert _grade(theirs.submission).score == Decimal("55.00")
    with scopes_disabled():
        assert list(
            GradeNotice.objects.order_by("created_at", "id").values_list(
                "score_before", "score_after"
            )
        ) == [(start, full), (full, zero)]


def test_regrading_twice_changes_nothing_the_second_time(
    regrade_world, django_capture_on_commit_callbacks
):
    world, assignment, *_ = regrade_world
    _thresholds(assignment, 0.0, 0.01)
    first = _run(world, _start(world, assignment, django_capture_on_commit_callbacks))
    assert _counts(first) == ("done", 2, 0, 1, 0)
    before = _state(assignment)
    second = _run(world, _start(world, assignment, django_capture_on_commit_callbacks))
    assert _counts(second) == ("done", 0, 2, 1, 0)
    assert _state(assignment) == {**before, "regrades": before["regrades"] + 1}
    # The same task delivered again finds its regrade done and does nothing.
    assert regrade_assignment(str(world.tenant.id), str(second.id)) == "done"
    assert _state(assignment) == {**before, "regrades": before["regrades"] + 1}


def test_a_second_start_while_one_is_queued_returns_it(
    regrade_world, django_capture_on_commit_callbacks
):
    world, assignment, *_ = regrade_world
    first = _start(world, assignment, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        response = page_client_for(world.teacher.user).post(_url(world, assignment))
    assert response.status_code == 302
    with scopes_disabled():
        assert list(Regrade.objects.filter(assignment=assignment)) == [first]
    assert _published() == []
    page = page_client_for(world.teacher.user).get(_url(world, assignment, "teach-leaderboard"))
    assert b'data-state="queued"' in page.content
    assert b'id="regrade-button" disabled' in page.content


def test_the_leaderboard_shows_the_counts_of_the_last_regrade(
    regrade_world, django_capture_on_commit_callbacks
):
    world, assignment, *_ = regrade_world
    _thresholds(assignment, 0.0, 0.01)
    _run(world, _start(world, assignment, django_capture_on_commit_callbacks))
    page = page_client_for(world.teacher.user).get(_url(world, assignment, "teach-leaderboard"))
    text = page.content.decode()
    assert 'data-state="done"' in text
    assert "Regraded: 2; unchanged: 0; skipped (no kept model): 1; failed: 0." in text


@pytest.mark.parametrize("who", ["learner", "other_teacher", "other_tenant_teacher"])
def test_only_a_teacher_of_the_course_may_regrade(
    who, regrade_world, tenant_b, django_capture_on_commit_callbacks
):
    world, assignment, *_ = regrade_world
    _thresholds(assignment, 0.0, 0.01)
    user = {
        "learner": world.learner.user,
        "other_teacher": MembershipFactory(tenant=world.tenant, role=Role.TEACHER).user,
        "other_tenant_teacher": tenant_b.teacher.user,
    }[who]
    before = _state(assignment)
    with django_capture_on_commit_callbacks(execute=True):
        response = page_client_for(user).post(_url(world, assignment))
        elsewhere = page_client_for(user).post(
            reverse(
                "teach-regrade",
                kwargs={
                    "tenant_slug": tenant_b.tenant.slug,
                    "course_id": world.course.id,
                    "assignment_id": assignment.id,
                },
            )
        )
    assert response.status_code == 404
    assert elsewhere.status_code == 404
    assert _state(assignment) == before
    assert _published() == []


def test_the_learner_sees_the_notice_and_only_they_may_dismiss_it(
    regrade_world, django_capture_on_commit_callbacks
):
    world, assignment, mine, _theirs, _without, other = regrade_world
    start = _score(mine.metrics["accuracy"], 0.0, 0.95)
    _thresholds(assignment, 0.0, 0.01)
    _run(world, _start(world, assignment, django_capture_on_commit_callbacks))
    with scopes_disabled():
        (notice,) = GradeNotice.objects.all()
    home = reverse("tenant-home", kwargs={"tenant_slug": world.tenant.slug})
    learner = page_client_for(world.learner.user)
    text = learner.get(home).content.decode()
    assert (
        f'Your grade for <a href="/t/{world.tenant.slug}/runs/{mine.submission_id}/">'
        f"{assignment.exercise.title}</a> changed from {start} to 100.00 after your teacher "
        "regraded the assignment." in text
    )
    assert f'id="grade-notice-{notice.id}"' not in page_client_for(other).get(home).content.decode()
    dismiss = reverse(
        "grade-notice-dismiss", kwargs={"tenant_slug": world.tenant.slug, "notice_id": notice.id}
    )
    for user in (other, world.teacher.user):
        assert page_client_for(user).post(dismiss).status_code == 404
        with scopes_disabled():
            assert GradeNotice.objects.get(id=notice.id).dismissed_at is None
    assert learner.get(dismiss).status_code == 405
    response = learner.post(dismiss)
    assert (response.status_code, response["Location"]) == (302, home)
    with scopes_disabled():
        assert GradeNotice.objects.get(id=notice.id).dismissed_at is not None
    assert f'id="grade-notice-{notice.id}"' not in learner.get(home).content.decode()
    assert learner.post(dismiss).status_code == 404  # dismissed already


def test_the_service_refuses_a_learner_and_writes_nothing(regrade_world):
    world, assignment, *_ = regrade_world
    before = _state(assignment)
    access = tenant_access(user=world.learner.user, tenant=world.tenant)
    with scope(tenant=world.tenant.id), pytest.raises(PermissionDenied):
        assignment_regrade_start(assignment=assignment, by=world.learner.user, access=access)
    assert _state(assignment) == before
    assert _published() == []


def test_a_model_whose_file_is_gone_is_counted_failed_and_its_grade_kept(
    regrade_world, django_capture_on_commit_callbacks
):
    world, assignment, mine, theirs, *_ = regrade_world
    with scopes_disabled():
        # Both models share the same bytes (the same untrained weights): one file for both.
        assert mine.onnx_id == theirs.onnx_id
        artifacts_storage().delete(mine.onnx.storage_name)
    grades = _state(assignment)["grades"]
    _thresholds(assignment, 0.0, 0.01)
    regrade = _run(world, _start(world, assignment, django_capture_on_commit_callbacks))
    assert _counts(regrade) == ("done", 0, 0, 1, 2)
    assert _state(assignment)["grades"] == grades


def test_a_regrade_lost_for_half_an_hour_gives_way_to_a_new_one(
    regrade_world, django_capture_on_commit_callbacks
):
    world, assignment, *_ = regrade_world
    lost = _start(world, assignment, django_capture_on_commit_callbacks)
    with scopes_disabled():
        Regrade.objects.filter(id=lost.id).update(
            state="running", updated_at=timezone.now() - timedelta(minutes=31)
        )
    fresh = _start(world, assignment, django_capture_on_commit_callbacks)
    assert fresh.id != lost.id
    with scopes_disabled():
        lost.refresh_from_db()
    assert (lost.state, lost.message) == (
        "failed",
        "It did not finish (its worker was lost); start it again.",
    )
    # The lost task, delivered at last, finds its regrade finished and does nothing.
    assert regrade_assignment(str(world.tenant.id), str(lost.id)) == "failed"
