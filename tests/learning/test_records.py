"""Learning records: a statement for each event type, written by the service where the event
happens, and the run's diagnosis and mastery written with the grade. No worker: the tests drive
the job through its lease as a worker does (claim, progress events, finish with the grade)."""

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scope, scopes_disabled

from apps.jobs.grading import grade_override
from apps.jobs.lease import claim_event_append, claim_finish, job_claim
from apps.jobs.services import submission_create
from apps.learning import bkt, services
from apps.learning.models import Mastery, Observation, RunDiagnosis, Statement
from runtime.templates import TEMPLATES
from tests.conftest import api_client_for, page_client_for
from tests.factories import SkillFactory

METRICS = {
    "accuracy": 0.91,
    "per_class_accuracy": {"same sign": 0.9, "opposite signs": 0.92},
    "confusion_matrix": [[45, 5], [4, 46]],
    "parameter_count": 33,
}


def _statements(**filters) -> list[Statement]:
    with scopes_disabled():
        return list(Statement.objects.filter(**filters).order_by("id"))


def _point(epoch, loss, train, val, steps_per_epoch=10):
    return {
        "epoch": epoch,
        "epochs": 6,
        "step": epoch * steps_per_epoch,
        "steps": 6 * steps_per_epoch,
        "loss": loss,
        "train_accuracy": train,
        "val_accuracy": val,
        "lr": 0.01,
        "samples_per_second": 1000.0,
        "elapsed": float(epoch),
        "eta": float(6 - epoch),
    }


# Training accuracy climbs to 0.99 while validation peaks at 0.70 and falls: overfitting.
OVERFITTING = [
    _point(1, 0.60, 0.70, 0.66),
    _point(2, 0.40, 0.82, 0.70),
    _point(3, 0.25, 0.90, 0.69),
    _point(4, 0.15, 0.95, 0.67),
    _point(5, 0.08, 0.98, 0.64),
    _point(6, 0.04, 0.99, 0.62),
]


def _submit(world, attempt_kind="spec"):
    with scope(tenant=world.tenant.id):
        return submission_create(
            assignment=world.assignment,
            learner=world.learner.user,
            kind=attempt_kind,
            spec=TEMPLATES["xor"].spec,
        )


def _run(world, points, *, metrics=METRICS, state="succeeded"):
    """A worker's run of a new submission: claim, progress events, the final state (with the
    grade, as the runner writes it, when it succeeded)."""
    submission = _submit(world)
    with scope(tenant=world.tenant.id):
        claim = job_claim(job_id=submission.job.id, owner="test-worker:1")
        for point in points:
            claim_event_append(claim, type="progress", payload=point)
        summary = {"status": "completed", "epochs_completed": 6, "steps": 60, "seconds": 12.5}
        if state == "succeeded":
            claim_finish(
                claim,
                state=state,
                final_payload={"outcome": summary},
                metrics=metrics,
                outcome=summary,
            )
        else:
            claim_finish(
                claim,
                state=state,
                final_payload={"message": "The loss became NaN."},
                failure_kind="diverged",
                message="The loss became NaN.",
                outcome={**summary, "status": "diverged"},
            )
    submission.refresh_from_db()
    return submission


@pytest.mark.django_db
def test_a_learner_viewing_a_lesson_is_recorded_a_teacher_is_not(tenant_a):
    lesson = tenant_a.lesson
    page = f"/t/alpha/lessons/{lesson.id}/"
    assert page_client_for(tenant_a.teacher.user).get(page).status_code == 200
    assert _statements() == []
    response = page_client_for(tenant_a.learner.user).get(page)
    assert response.status_code == 200
    assert lesson.title in response.content.decode()
    api = f"/api/v1/t/alpha/courses/{tenant_a.course.id}/lessons/{lesson.id}/"
    assert api_client_for(tenant_a.learner.user).get(api).status_code == 200
    rows = _statements()
    assert [(s.actor_id, s.verb, s.object_type, s.object_id, s.object_name) for s in rows] == [
        (tenant_a.learner.user.id, "experienced", "lesson", str(lesson.id), lesson.title)
    ] * 2
    assert {(s.tenant_id, s.course_id, s.assignment_id, s.result) for s in rows} == {
        (tenant_a.tenant.id, tenant_a.course.id, None, None)
    }


@pytest.mark.django_db
def test_a_lesson_of_a_course_the_learner_does_not_take_is_404_and_records_nothing(
    tenant_a, tenant_b
):
    page = f"/t/alpha/lessons/{tenant_b.lesson.id}/"
    assert page_client_for(tenant_a.learner.user).get(page).status_code == 404
    assert _statements() == []


@pytest.mark.django_db
def test_a_submission_records_an_attempt(tenant_a):
    response = api_client_for(tenant_a.learner.user).post(
        f"/api/v1/t/alpha/assignments/{tenant_a.assignment.id}/submissions/",
        {"kind": "spec", "spec": TEMPLATES["xor"].spec},
        format="json",
    )
    assert response.status_code == 201, response.content
    [row] = _statements()
    submission_id = response.json()["id"]
    assert (row.verb, row.object_type, row.object_id, row.object_name) == (
        "attempted",
        "assignment",
        str(tenant_a.assignment.id),
        tenant_a.exercise.title,
    )
    assert (row.course_id, row.assignment_id) == (tenant_a.course.id, tenant_a.assignment.id)
    assert row.result == {
        "response": "attempt 2 (spec)",
        "extensions": {"https://aula.example/xapi/extensions/submission": submission_id},
    }


@pytest.mark.django_db
def test_a_graded_run_records_completion_score_and_hints_and_moves_mastery(tenant_a):
    submission = _run(tenant_a, OVERFITTING)
    job = submission.job
    rows = _statements(verb__in=["completed", "scored", "received-hint"])
    assert [r.verb for r in rows] == ["received-hint", "scored", "completed"]
    hint, scored, completed = rows
    # The diagnosis: overfitting, with its evidence, in the grade's feedback too.
    with scopes_disabled():
        diagnosis = RunDiagnosis.objects.get(job=job)
    assert [h["code"] for h in diagnosis.hints] == ["overfitting"]
    assert diagnosis.hints[0]["evidence"]["train_accuracy"] == 0.99
    assert diagnosis.hints[0]["evidence"]["val_accuracy"] == 0.62
    assert (hint.object_type, hint.object_id, hint.object_name) == (
        "run",
        str(job.id),
        diagnosis.hints[0]["title"],
    )
    assert hint.result["extensions"] == {"https://aula.example/xapi/extensions/hint": "overfitting"}
    grade = submission.grade
    assert diagnosis.hints[0]["message"] in grade.feedback
    # The score: 0.91 test accuracy, 0 points at 0.5 and full marks at 0.95: 91.11.
    assert grade.score == Decimal("91.11")
    assert scored.result["score"] == {"raw": 91.11, "min": 0.0, "max": 100.0, "scaled": 0.9111}
    assert scored.result["success"] is True
    assert scored.result["completion"] is True
    assert completed.result == {
        "completion": True,
        "response": "succeeded",
        "duration": "PT12.5S",
        "extensions": {
            "https://aula.example/xapi/extensions/run": str(job.id),
            "https://aula.example/xapi/extensions/metrics": {
                "accuracy": 0.91,
                "parameter_count": 33,
            },
        },
    }
    # One observation of the exercise's skill; mastery one BKT step from the prior.
    with scopes_disabled():
        [observation] = Observation.objects.all()
        mastery = Mastery.objects.get(user=tenant_a.learner.user, skill=tenant_a.skill)
    assert (observation.skill_id, observation.correct) == (tenant_a.skill.id, True)
    expected = bkt.update(0.2, True, learn=0.15, slip=0.1, guess=0.2)
    assert (mastery.probability, mastery.observations) == (pytest.approx(expected), 1)


@pytest.mark.django_db
def test_a_diverged_run_records_an_incomplete_run_and_the_divergence_hint(tenant_a):
    # The loss went NaN during epoch 2 (its event holds null: JSON has no NaN); the trainer
    # stopped the run as diverged.
    points = [_point(1, 0.7, 0.5, 0.5), {**_point(2, None, 0.5, None), "step": 14}]
    submission = _run(tenant_a, points, state="failed")
    rows = _statements(verb__in=["completed", "scored", "received-hint"])
    assert [r.verb for r in rows] == ["received-hint", "completed"]
    assert rows[0].result["extensions"] == {
        "https://aula.example/xapi/extensions/hint": "divergence"
    }
    assert rows[1].result["completion"] is False
    assert rows[1].result["response"] == "failed"
    with scopes_disabled():
        assert not Observation.objects.exists()  # no grade, no observation
        assert RunDiagnosis.objects.get(job=submission.job).hints[0]["code"] == "divergence"


@pytest.mark.django_db
def test_an_override_records_the_new_score_with_its_reason_and_is_no_observation(tenant_a):
    with scope(tenant=tenant_a.tenant.id):
        grade = tenant_a.submission.grade
        grade_override(grade=grade, by=tenant_a.teacher.user, score=Decimal("95"), reason="Oral")
    [row] = _statements()
    assert (row.verb, row.actor_id) == ("scored", tenant_a.learner.user.id)
    assert row.result["score"] == {"raw": 95.0, "min": 0.0, "max": 100.0, "scaled": 0.95}
    assert (row.result["success"], row.result["response"]) == (True, "Oral")
    with scopes_disabled():
        assert not Observation.objects.exists()


@pytest.mark.django_db
def test_the_mastery_update_does_the_same_work_whatever_the_history(tenant_a):
    """Counting work, not time: the queries of one observation, after 1 and after 40."""
    learner, skill = tenant_a.learner.user, tenant_a.skill
    seen = []

    def observe(correct):
        submission = _submit_cheap(tenant_a, 900 + len(seen))
        seen.append(submission)
        with CaptureQueriesContext(connection) as queries:
            services.mastery_observe(
                tenant_id=tenant_a.tenant.id,
                user_id=learner.id,
                skill_id=skill.id,
                submission_id=submission.id,
                correct=correct,
            )
        return [_shape(q["sql"]) for q in queries.captured_queries]

    observe(True)
    short = observe(False)
    for n in range(38):
        services.mastery_observe(
            tenant_id=tenant_a.tenant.id,
            user_id=learner.id,
            skill_id=skill.id,
            submission_id=_submit_cheap(tenant_a, n).id,
            correct=n % 3 != 0,
        )
    long = observe(True)
    assert len(short) == 4  # insert observation, read params, lock mastery, write it
    assert long == short
    # ...and none of them reads the learner's history.
    assert [q.split(" FROM ")[-1].split()[0] for q in long if q.startswith("SELECT")] == [
        '"learning_skillparams"',
        '"learning_mastery"',
    ]
    with scopes_disabled():
        assert Mastery.objects.get(user=learner, skill=skill).observations == 41


def _shape(sql: str) -> str:
    """A query without its values: what it does to which table."""
    return re.split(r" (?:VALUES|WHERE|SET) ", sql)[0]


def _submit_cheap(world, n):
    from tests.factories import SubmissionFactory

    return SubmissionFactory(
        assignment=world.assignment, learner=world.learner.user, attempt=100 + n
    )


@pytest.mark.django_db
def test_an_exercise_with_two_skills_observes_both(tenant_a):
    second = SkillFactory(tenant=tenant_a.tenant, slug="alpha-training", name="Training")
    with scopes_disabled():
        tenant_a.exercise.skills.add(second)
    _run(tenant_a, OVERFITTING)
    with scopes_disabled():
        assert sorted(Observation.objects.values_list("skill__slug", flat=True)) == [
            "alpha-mlp",
            "alpha-training",
        ]
        assert Mastery.objects.filter(user=tenant_a.learner.user).count() == 2
