"""A learner's own grade on an assignment with hidden test parts is withheld until the due date,
wherever they could read it: the submissions API, the run page, the assignment and home pages,
the assignment's best score (apps/jobs/selectors.grade_withheld_until). Teachers see it whole;
after the due date the learner does too. One-part grades are shown as before."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from apps.jobs.models import Grade
from apps.learning import bkt
from apps.learning import selectors as learning_selectors
from apps.learning import services as learning_services
from apps.learning.models import Mastery, Observation
from tests.conftest import api_client_for, page_client_for
from tests.factories import AssignmentFactory, ExerciseFactory, graded_submission

pytestmark = pytest.mark.django_db

PRIVATE = {
    "metric": "accuracy",
    "accuracy": 0.95,
    "per_class_accuracy": {"a": 0.9, "b": 1.0},
    "confusion_matrix": [[18, 2], [0, 20]],
    "class_names": ["a", "b"],
    "test_samples": 40,
}
PUBLIC = {"accuracy": 0.7, "per_class_accuracy": {"a": 0.6, "b": 0.8}, "test_samples": 40}


def _graded(world, *, due_in: timedelta, scores_shown="public_live", parts=True):
    exercise = ExerciseFactory(course=world.course, min_metric=0.0, target_metric=1.0)
    now = timezone.now()
    assignment = AssignmentFactory(
        exercise=exercise,
        opens_at=now - timedelta(days=7),
        due_at=now + due_in,
        scores_shown=scores_shown,
    )
    submission = graded_submission(
        assignment=assignment, learner=world.learner.user, attempt=1, score=95
    )
    metrics = {**PRIVATE, "public": PUBLIC} if parts else PRIVATE
    with scopes_disabled():
        Grade.objects.filter(submission=submission).update(
            metrics=metrics, feedback="Accuracy 95 % on the test set."
        )
    return assignment, submission


def _grade_of(client, world, submission) -> dict:
    response = client.get(f"/api/v1/t/{world.tenant.slug}/submissions/{submission.id}/")
    assert response.status_code == 200, response.content
    return response.json()["grade"]


def test_before_the_due_date_the_learner_gets_the_public_part_alone(tenant_a):
    assignment, submission = _graded(tenant_a, due_in=timedelta(days=1))
    grade = _grade_of(api_client_for(tenant_a.learner.user), tenant_a, submission)
    assert (grade["score"], grade["automatic_score"], grade["feedback"]) == (None, None, "")
    assert grade["metrics"] == {"public": PUBLIC}
    assert grade["revisions"] == []
    assert grade["max_score"] == "100.00"
    due = timezone.localtime(assignment.due_at, timezone.get_current_timezone())
    assert grade["withheld_until"] == due.isoformat().replace("+00:00", "Z")
    # and in the lists
    for url in (
        f"/api/v1/t/{tenant_a.tenant.slug}/submissions/",
        f"/api/v1/t/{tenant_a.tenant.slug}/assignments/{assignment.id}/submissions/",
    ):
        rows = api_client_for(tenant_a.learner.user).get(url).json()["results"]
        (row,) = [r for r in rows if r["id"] == str(submission.id)]
        assert (row["grade"]["score"], row["grade"]["metrics"]) == (None, {"public": PUBLIC})


def test_shown_only_at_the_end_the_learner_gets_no_figure_before_the_due_date(tenant_a):
    _, submission = _graded(tenant_a, due_in=timedelta(days=1), scores_shown="at_end")
    grade = _grade_of(api_client_for(tenant_a.learner.user), tenant_a, submission)
    assert (grade["score"], grade["metrics"]) == (None, {})


def test_the_teacher_gets_the_whole_grade_before_the_due_date(tenant_a):
    _, submission = _graded(tenant_a, due_in=timedelta(days=1))
    grade = _grade_of(api_client_for(tenant_a.teacher.user), tenant_a, submission)
    assert (grade["score"], grade["withheld_until"]) == ("95.00", None)
    assert grade["metrics"] == {**PRIVATE, "public": PUBLIC}
    assert grade["feedback"] == "Accuracy 95 % on the test set."
    assert [r["score"] for r in grade["revisions"]] == ["95.00"]


@pytest.mark.parametrize("scores_shown", ["public_live", "at_end"])
def test_after_the_due_date_the_learner_gets_the_whole_grade(tenant_a, scores_shown):
    _, submission = _graded(tenant_a, due_in=timedelta(minutes=-1), scores_shown=scores_shown)
    grade = _grade_of(api_client_for(tenant_a.learner.user), tenant_a, submission)
    assert (grade["score"], grade["withheld_until"]) == ("95.00", None)
    assert grade["metrics"] == {**PRIVATE, "public": PUBLIC}


def test_for_practice_the_learner_gets_the_whole_grade_at_once(tenant_a):
    _, submission = _graded(tenant_a, due_in=timedelta(days=1), scores_shown="grade_live")
    grade = _grade_of(api_client_for(tenant_a.learner.user), tenant_a, submission)
    assert (grade["score"], grade["withheld_until"]) == ("95.00", None)
    assert grade["metrics"] == {**PRIVATE, "public": PUBLIC}


def test_a_grade_of_one_part_is_never_withheld(tenant_a):
    _, submission = _graded(tenant_a, due_in=timedelta(days=1), parts=False)
    grade = _grade_of(api_client_for(tenant_a.learner.user), tenant_a, submission)
    assert (grade["score"], grade["metrics"], grade["withheld_until"]) == ("95.00", PRIVATE, None)


def test_the_run_page_withholds_the_grade_from_the_learner_alone(tenant_a):
    _, submission = _graded(tenant_a, due_in=timedelta(days=1))
    url = f"/t/{tenant_a.tenant.slug}/runs/{submission.id}/"
    page = page_client_for(tenant_a.learner.user).get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "95.00 / 100.00" not in text and "Accuracy 95 %" not in text
    assert 'id="confusion"' not in text and "0.9500" not in text
    assert "shown after the due date" in text
    assert 'id="public-metrics"' in text and "0.7000" in text
    teacher = page_client_for(tenant_a.teacher.user).get(url).content.decode()
    assert "95.00 / 100.00" in teacher and 'id="confusion"' in teacher


def test_the_assignment_and_home_pages_and_the_best_score_withhold_it(tenant_a):
    assignment, _ = _graded(tenant_a, due_in=timedelta(days=1))
    learner = page_client_for(tenant_a.learner.user)
    for url in (
        f"/t/{tenant_a.tenant.slug}/assignments/{assignment.id}/",
        f"/t/{tenant_a.tenant.slug}/",
    ):
        text = learner.get(url).content.decode()
        assert "95.00" not in text, url
        assert "after the due date" in text, url
    rows = api_client_for(tenant_a.learner.user).get(
        f"/api/v1/t/{tenant_a.tenant.slug}/me/assignments/"
    )
    assert rows.status_code == 200, rows.content
    (row,) = [r for r in rows.json()["results"] if r["id"] == str(assignment.id)]
    assert row["best_score"] is None


# --- Mastery and regrade notices: no side channel to a withheld grade ---------------------------


def _graded_on_a_skill(world, *, due_in, scores_shown, public_accuracy):
    """A grade of 95 (a pass) whose public part scored `public_accuracy`, on an exercise that
    practises the world's skill, given as the worker gives it (services.grade_given)."""
    assignment, submission = _graded(world, due_in=due_in, scores_shown=scores_shown)
    with scopes_disabled():
        assignment.exercise.skills.add(world.skill)
        grade = Grade.objects.get(submission=submission)
        grade.metrics = {**grade.metrics, "public": {**PUBLIC, "accuracy": public_accuracy}}
        grade.save(update_fields=["metrics"])
    learning_services.grade_given(grade=grade, automatic=True)
    return assignment, submission


def _observations(world) -> list[bool]:
    with scopes_disabled():
        return list(
            Observation.objects.filter(user=world.learner.user, skill=world.skill).values_list(
                "correct", flat=True
            )
        )


def _mastery(world) -> float | None:
    with scopes_disabled():
        row = Mastery.objects.filter(user=world.learner.user, skill=world.skill).first()
        return row.probability if row else None


@pytest.mark.parametrize(
    ("scores_shown", "observed"),
    [("grade_live", [True]), ("public_live", [False])],
    ids=["grade-shown", "public-part-shown"],
)
def test_mastery_moves_with_what_the_learner_sees_of_the_grade(tenant_a, scores_shown, observed):
    """A private pass, a public fail (30 %): shown at once, the grade is observed; withheld,
    the public part the learner sees is, so their mastery says nothing of the private part."""
    _graded_on_a_skill(
        tenant_a, due_in=timedelta(days=1), scores_shown=scores_shown, public_accuracy=0.3
    )
    assert _observations(tenant_a) == observed
    with scopes_disabled():
        params = learning_services.skill_params(tenant_a.skill.id)
    expected = bkt.update(
        params["prior"],
        observed[0],
        learn=params["learn"],
        slip=params["slip"],
        guess=params["guess"],
    )
    assert _mastery(tenant_a) == pytest.approx(expected)


def test_shown_only_at_the_end_mastery_observes_the_grade_after_the_due_date(tenant_a):
    assignment, _ = _graded_on_a_skill(
        tenant_a, due_in=timedelta(days=1), scores_shown="at_end", public_accuracy=0.3
    )
    assert (_observations(tenant_a), _mastery(tenant_a)) == ([], None)
    before = assignment.due_at - timedelta(seconds=1)
    assert learning_services.withheld_grades_observe(now=before) == 0  # not yet
    assert _observations(tenant_a) == []
    after = assignment.due_at  # the private part is shown from the due date on
    assert learning_services.withheld_grades_observe(now=after) == 1
    assert _observations(tenant_a) == [True]  # the grade's 95: a pass
    assert learning_services.withheld_grades_observe(now=after) == 0  # once
    assert _observations(tenant_a) == [True]


def test_a_regrade_notice_of_a_withheld_grade_waits_for_the_due_date(tenant_a):
    assignment, submission = _graded(tenant_a, due_in=timedelta(days=1))
    with scopes_disabled():
        grade = Grade.objects.get(submission=submission)
        revision = grade.revisions.create(tenant=grade.tenant, score=90, source="regrade")
    with scope(tenant=tenant_a.tenant.id):
        notice = learning_services.grade_notice_create(
            grade=grade, revision=revision, score_before=95, score_after=90
        )
    learner = tenant_a.learner.user

    def listed(now):
        with scope(tenant=tenant_a.tenant.id):
            return list(
                learning_selectors.grade_notice_list_open(
                    tenant=tenant_a.tenant, user=learner, now=now
                )
            )

    assert listed(timezone.now()) == []
    home = page_client_for(learner).get(f"/t/{tenant_a.tenant.slug}/")
    assert home.status_code == 200
    assert 'id="grade-notices"' not in home.content.decode()
    assert f'id="grade-notice-{notice.id}"' not in home.content.decode()
    assert listed(assignment.due_at) == [notice]


def test_the_scored_statement_of_a_withheld_grade_is_not_in_the_learners_own_statements(
    tenant_a, time_machine
):
    """It quotes the private part's score: the learner reads it from the due date on; their
    teachers (the course's statements) and administrators at once."""
    assignment, submission = _graded(tenant_a, due_in=timedelta(days=1))
    with scopes_disabled():
        grade = Grade.objects.get(submission=submission)
    learning_services.grade_given(grade=grade, automatic=False)
    url = f"/api/v1/t/{tenant_a.tenant.slug}/xapi/statements/?verb=scored"

    def scored(user, query="") -> list[float]:
        response = api_client_for(user).get(url + query)
        assert response.status_code == 200, response.content
        return [s["result"]["score"]["raw"] for s in response.json()["statements"]]

    assert scored(tenant_a.learner.user) == []
    assert scored(tenant_a.teacher.user, f"&course={tenant_a.course.id}") == [95.0]
    assert scored(tenant_a.admin.user) == [95.0]
    time_machine.move_to(assignment.due_at)
    assert scored(tenant_a.learner.user) == [95.0]
