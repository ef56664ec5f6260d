"""The public/private leaderboard of an assignment on a dataset with hidden test parts: what its
teachers and its learners see before and after the due date, under each of the teacher's
choices (apps/jobs/selectors.standings_get, the leaderboard API and the teacher's page)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_scopes import scopes_disabled

from apps.jobs.models import Grade
from apps.tenants.models import Role
from tests.conftest import api_client_for, page_client_for
from tests.factories import (
    AssignmentFactory,
    EnrollmentFactory,
    ExerciseFactory,
    MembershipFactory,
    graded_submission,
)

pytestmark = pytest.mark.django_db


def _board(world, *, due_in: timedelta, scores_shown: str):
    """Two learners: `ann` leads the public part (0.9 to 0.7), `bob` the private one (0.95 to
    0.6), and so the grade."""
    exercise = ExerciseFactory(course=world.course, min_metric=0.0, target_metric=1.0)
    now = timezone.now()
    assignment = AssignmentFactory(
        exercise=exercise,
        opens_at=now - timedelta(days=7),
        due_at=now + due_in,
        scores_shown=scores_shown,
    )
    bob = MembershipFactory(tenant=world.tenant, role=Role.LEARNER).user
    EnrollmentFactory(course=world.course, user=bob)
    ann = world.learner.user
    for learner, public, private in ((ann, 0.9, 0.6), (bob, 0.7, 0.95)):
        submission = graded_submission(
            assignment=assignment, learner=learner, attempt=1, score=round(private * 100)
        )
        with scopes_disabled():
            Grade.objects.filter(submission=submission).update(
                metrics={
                    "accuracy": private,
                    "test_samples": 60,
                    "public": {"accuracy": public, "test_samples": 60},
                }
            )
    return assignment, ann, bob


def _rows(client, world, assignment):
    response = client.get(f"/api/v1/t/{world.tenant.slug}/assignments/{assignment.id}/leaderboard/")
    assert response.status_code == 200, response.content
    return [
        (row["full_name"], row["you"], row["public_metric"], row["private_metric"], row["score"])
        for row in response.json()
    ]


@pytest.mark.parametrize("scores_shown", ["public_live", "at_end"])
def test_teachers_see_both_parts_and_the_grades_at_any_time(tenant_a, scores_shown):
    assignment, ann, bob = _board(tenant_a, due_in=timedelta(days=1), scores_shown=scores_shown)
    assert _rows(api_client_for(tenant_a.teacher.user), tenant_a, assignment) == [
        (bob.full_name, False, 0.7, 0.95, "95.00"),
        (ann.full_name, False, 0.9, 0.6, "60.00"),
    ]


def test_before_the_due_date_learners_see_the_public_part_alone_ranked_by_it(tenant_a):
    assignment, ann, bob = _board(tenant_a, due_in=timedelta(days=1), scores_shown="public_live")
    assert _rows(api_client_for(ann), tenant_a, assignment) == [
        (ann.full_name, True, 0.9, None, None),
        (bob.full_name, False, 0.7, None, None),
    ]
    response = api_client_for(ann).get(
        f"/api/v1/t/{tenant_a.tenant.slug}/assignments/{assignment.id}/leaderboard/"
    )
    assert [row["learner"] for row in response.json()] == [None, None]  # no emails
    assert [row["submission"] is None for row in response.json()] == [False, True]


def test_at_end_learners_see_nothing_before_the_due_date(tenant_a):
    assignment, ann, _bob = _board(tenant_a, due_in=timedelta(days=1), scores_shown="at_end")
    assert _rows(api_client_for(ann), tenant_a, assignment) == []


@pytest.mark.parametrize("scores_shown", ["public_live", "at_end"])
def test_after_the_due_date_learners_see_the_private_part_and_the_grades(tenant_a, scores_shown):
    assignment, ann, bob = _board(tenant_a, due_in=-timedelta(minutes=1), scores_shown=scores_shown)
    assert _rows(api_client_for(ann), tenant_a, assignment) == [
        (bob.full_name, False, 0.7, 0.95, "95.00"),
        (ann.full_name, True, 0.9, 0.6, "60.00"),
    ]


def test_the_teachers_page_shows_both_parts(tenant_a):
    assignment, _ann, _bob = _board(tenant_a, due_in=timedelta(days=1), scores_shown="public_live")
    page = page_client_for(tenant_a.teacher.user).get(
        f"/t/{tenant_a.tenant.slug}/teach/courses/{tenant_a.course.id}/assignments/"
        f"{assignment.id}/leaderboard/"
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "Public part" in html and "Private part" in html
    assert "95.0%" in html and "70.0%" in html and "60.0%" in html and "90.0%" in html
