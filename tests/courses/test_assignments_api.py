"""Assignments and enrollments: teachers create, change and publish assignments and enroll
members; a learner's list (me/assignments/) shows each published assignment of the courses they
take with its status, attempts and best score, in a fixed number of queries."""

import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from apps.courses.models import Assignment, Enrollment, LatePolicy
from apps.jobs.selectors import assignment_list_for_learner
from apps.jobs.services import assignment_window_check
from tests.conftest import api_client_for
from tests.courses.bodies import (
    assignment_body,
    enrollment_body,
    exercise_for_learner_body,
    learner_row_body,
    page,
)
from tests.courses.conftest import refused, url
from tests.factories import (
    AssignmentFactory,
    CourseFactory,
    EnrollmentFactory,
    ExerciseFactory,
    MembershipFactory,
    SubmissionFactory,
    graded_submission,
)

pytestmark = pytest.mark.calendar  # windows, periods, expiries: relative to today

HOUR = timedelta(hours=1)


def _dates(**offsets) -> dict:
    now = timezone.now()
    return {name: (now + offset).isoformat() for name, offset in offsets.items()}


@pytest.mark.django_db
def test_a_teacher_creates_and_publishes_an_assignment(tenant_a):
    client = api_client_for(tenant_a.teacher.user)
    learner = api_client_for(tenant_a.learner.user)
    assignments = url(tenant_a, f"courses/{tenant_a.course.id}/assignments/")
    body = {
        "exercise": str(tenant_a.exercise.id),
        **_dates(opens_at=HOUR, due_at=48 * HOUR, closes_at=72 * HOUR),
        "max_attempts": 3,
        "late_policy": "penalty",
        "late_penalty": 0.5,
    }
    response = client.post(assignments, body, format="json")
    assert response.status_code == 201, response.content
    with scopes_disabled():
        draft = Assignment.objects.get(pk=response.json()["id"])
    assert (draft.course, draft.tenant, draft.max_attempts, draft.published_at) == (
        tenant_a.course,
        tenant_a.tenant,
        3,
        None,
    )
    assert response.json() == assignment_body(draft)

    # A draft is the teachers' alone. By due date: the draft's is in 2 days, the other's in 7.
    assert client.get(assignments).json() == page(
        [assignment_body(draft), assignment_body(tenant_a.assignment)]
    )
    assert learner.get(assignments).json() == page([assignment_body(tenant_a.assignment)])
    refused(learner, "get", url(tenant_a, f"assignments/{draft.id}/"), 404)

    response = client.post(url(tenant_a, f"assignments/{draft.id}/publish/"))
    assert response.status_code == 200
    draft.refresh_from_db()
    published_at = draft.published_at
    assert published_at is not None
    assert response.json() == assignment_body(draft)
    assert learner.get(url(tenant_a, f"assignments/{draft.id}/")).json()["status"] == "upcoming"
    client.post(url(tenant_a, f"assignments/{draft.id}/publish/"))
    draft.refresh_from_db()
    assert draft.published_at == published_at


@pytest.mark.django_db
def test_a_teacher_changes_an_assignments_dates_and_policy(tenant_a):
    client = api_client_for(tenant_a.teacher.user)
    target = url(tenant_a, f"assignments/{tenant_a.assignment.id}/")
    response = client.patch(
        target,
        {**_dates(due_at=HOUR, closes_at=2 * HOUR), "late_policy": "accept"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assignment = tenant_a.assignment
    assert response.json() == assignment_body(assignment)
    assert (assignment.late_policy, assignment.closes_at - assignment.due_at) == ("accept", HOUR)
    response = client.patch(target, {"closes_at": None}, format="json")
    assert response.json()["closes_at"] is None
    error = refused(client, "patch", target, 400, {"exercise": str(tenant_a.exercise.id)})
    assert error["fields"] == {"exercise": ["Unknown field; this endpoint does not accept it."]}


@pytest.mark.django_db
def test_assignment_rules_name_their_field_and_change_nothing(tenant_a, tenant_b):
    client = api_client_for(tenant_a.teacher.user)
    create = url(tenant_a, f"courses/{tenant_a.course.id}/assignments/")
    exercise = str(tenant_a.exercise.id)
    dated = {"exercise": exercise, **_dates(opens_at=HOUR, due_at=2 * HOUR)}
    body = {"exercise": exercise, **_dates(opens_at=HOUR, due_at=HOUR)}
    error = refused(client, "post", create, 400, body)
    assert error["fields"] == {"due_at": ["The due date must be after the opening date."]}
    body = {**dated, **_dates(closes_at=HOUR)}
    error = refused(client, "post", create, 400, body)
    assert error["fields"] == {"closes_at": ["The closing date must be at or after the due date."]}
    elsewhere = ExerciseFactory(course=CourseFactory(tenant=tenant_a.tenant))
    error = refused(client, "post", create, 400, {**dated, "exercise": str(elsewhere.id)})
    assert error["fields"] == {"exercise": ["This exercise belongs to another course."]}
    for unknown in (uuid.uuid4(), tenant_b.exercise.id):
        error = refused(client, "post", create, 400, {**dated, "exercise": str(unknown)})
        assert error["fields"] == {"exercise": ["No exercise with this id in this tenant."]}
    error = refused(client, "post", create, 400, {**dated, "late_policy": "sometimes"})
    assert error["fields"] == {"late_policy": ['"sometimes" is not a valid choice.']}
    error = refused(client, "post", create, 400, {**dated, "max_attempts": 0})
    assert error["fields"] == {"max_attempts": ["Ensure this value is greater than or equal to 1."]}


@pytest.mark.django_db
def test_teachers_and_learners_read_an_assignment_each_their_way(tenant_a):
    target = url(tenant_a, f"assignments/{tenant_a.assignment.id}/")
    teacher = api_client_for(tenant_a.teacher.user).get(target)
    assert teacher.json() == assignment_body(tenant_a.assignment)
    learner = api_client_for(tenant_a.learner.user).get(target)
    assert learner.status_code == 200
    exercise = exercise_for_learner_body(tenant_a.exercise, [tenant_a.skill])
    assert learner.json() == learner_row_body(
        tenant_a.assignment, status="open", used=1, best="80.00", exercise=exercise
    )
    assert learner.json()["exercise"]["starter_spec"] == tenant_a.exercise.starter_spec


# --- The learner's list -----------------------------------------------------------------------


def _learner_world(world):
    """Assignments of the world's course in every state, and ones the learner must not see."""
    now = timezone.now()
    course, exercise = world.course, world.exercise

    def make(**fields):
        return AssignmentFactory(exercise=exercise, **fields)

    rows = {
        "upcoming": make(opens_at=now + HOUR, due_at=now + 2 * HOUR),
        "late": make(
            opens_at=now - 3 * HOUR,
            due_at=now - HOUR,
            closes_at=now + HOUR,
            late_policy=LatePolicy.PENALTY,
            late_penalty=0.5,
        ),
        "late, no end": make(
            opens_at=now - 3 * HOUR, due_at=now - 2 * HOUR, late_policy=LatePolicy.ACCEPT
        ),
        "closed, refused": make(opens_at=now - 3 * HOUR, due_at=now - 1.5 * HOUR),
        "closed, ended": make(
            opens_at=now - 3 * HOUR,
            due_at=now - 2.5 * HOUR,
            closes_at=now - 2 * HOUR,
            late_policy=LatePolicy.ACCEPT,
        ),
    }
    make(published_at=None, due_at=now - HOUR * 0.5)  # a draft
    unpublished = CourseFactory(tenant=world.tenant, published_at=None)
    EnrollmentFactory(course=unpublished, user=world.learner.user)
    AssignmentFactory(exercise=ExerciseFactory(course=unpublished))
    AssignmentFactory(exercise=ExerciseFactory(course=CourseFactory(tenant=world.tenant)))
    assert course.is_published
    return rows


@pytest.mark.django_db
def test_a_learners_list_has_status_attempts_and_best_score(tenant_a):
    rows = _learner_world(tenant_a)
    learner = tenant_a.learner.user
    graded_submission(assignment=tenant_a.assignment, learner=learner, attempt=2, score="90.5")
    SubmissionFactory(assignment=tenant_a.assignment, learner=learner, attempt=3)  # ungraded
    someone = MembershipFactory(tenant=tenant_a.tenant).user
    EnrollmentFactory(course=tenant_a.course, user=someone)
    graded_submission(assignment=tenant_a.assignment, learner=someone, attempt=1, score=99)
    for attempt in range(1, 7):  # more attempts than allowed: none are left, never fewer
        SubmissionFactory(assignment=rows["late"], learner=learner, attempt=attempt)

    response = api_client_for(learner).get(url(tenant_a, "me/assignments/"))
    assert response.status_code == 200
    # Ordered by due date.
    assert response.json() == page(
        [
            learner_row_body(rows["closed, ended"], status="closed", used=0, best=None),
            learner_row_body(rows["late, no end"], status="late", used=0, best=None),
            learner_row_body(rows["closed, refused"], status="closed", used=0, best=None),
            learner_row_body(rows["late"], status="late", used=6, best=None),
            learner_row_body(rows["upcoming"], status="upcoming", used=0, best=None),
            learner_row_body(tenant_a.assignment, status="open", used=3, best="90.50"),
        ]
    )
    # Someone else's row counts their own attempts only.
    theirs = api_client_for(someone).get(url(tenant_a, "me/assignments/")).json()["results"]
    assert [(r["id"], r["attempts_used"], r["best_score"]) for r in theirs][-1] == (
        str(tenant_a.assignment.id),
        1,
        "99.00",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "policy,after_due",
    [(LatePolicy.ACCEPT, ["late", "late", "closed"]), (LatePolicy.REFUSE, ["closed"] * 3)],
)
def test_the_status_is_the_submission_services_window(tenant_a, policy, after_due):
    a = tenant_a.assignment
    with scopes_disabled():
        Assignment.objects.filter(pk=a.pk).update(late_policy=policy, closes_at=a.due_at + HOUR)
    a.refresh_from_db()

    def status_at(now):
        with scope(tenant=tenant_a.tenant):
            rows = assignment_list_for_learner(
                user=tenant_a.learner.user, tenant=tenant_a.tenant, now=now
            )
            return rows.get(pk=a.pk).status

    def window_at(now):
        try:
            return "late" if assignment_window_check(a, now).is_late else "open"
        except ValidationError:
            return "upcoming" if now < a.opens_at else "closed"

    second = timedelta(seconds=1)
    instants = [
        a.opens_at - second,
        a.opens_at,
        a.due_at,
        a.due_at + second,
        a.due_at + HOUR,
        a.due_at + HOUR + second,
    ]
    statuses = [status_at(now) for now in instants]
    assert statuses == ["upcoming", "open", "open", *after_due]
    assert statuses == [window_at(now) for now in instants]


@pytest.mark.django_db
def test_the_learners_list_takes_the_same_queries_for_one_row_or_many(tenant_a):
    client = api_client_for(tenant_a.learner.user)
    target = url(tenant_a, "me/assignments/")
    client.get(target)  # the token's first use records its login; count the steady state

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert client.get(target).status_code == 200
        return len(captured)

    one = queries()
    _learner_world(tenant_a)
    assert queries() == one


# --- Enrollments ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_teacher_enrolls_and_removes_a_member(tenant_a):
    client = api_client_for(tenant_a.teacher.user)
    enrollments = url(tenant_a, f"courses/{tenant_a.course.id}/enrollments/")
    assert client.get(enrollments).json() == page([enrollment_body(tenant_a.enrollment)])

    member = MembershipFactory(tenant=tenant_a.tenant).user
    response = client.post(enrollments, {"email": member.email.upper()}, format="json")
    assert response.status_code == 201, response.content
    with scopes_disabled():
        enrollment = Enrollment.objects.get(course=tenant_a.course, user=member)
    assert response.json() == enrollment_body(enrollment)
    member_client = api_client_for(member)
    assert member_client.get(url(tenant_a, f"courses/{tenant_a.course.id}/")).status_code == 200

    response = client.delete(f"{enrollments}{enrollment.id}/")
    assert response.status_code == 204
    with scopes_disabled():
        assert not Enrollment.objects.filter(pk=enrollment.pk).exists()
    refused(member_client, "get", url(tenant_a, f"courses/{tenant_a.course.id}/"), 404)


@pytest.mark.django_db
def test_only_members_not_yet_enrolled_can_be_enrolled(tenant_a, tenant_b):
    client = api_client_for(tenant_a.teacher.user)
    enrollments = url(tenant_a, f"courses/{tenant_a.course.id}/enrollments/")
    outsider = tenant_b.learner.user.email
    error = refused(client, "post", enrollments, 400, {"email": outsider})
    assert error["fields"] == {"email": [f"No member of this tenant has the email {outsider}."]}
    enrolled = tenant_a.learner.user.email
    error = refused(client, "post", enrollments, 400, {"email": enrolled})
    assert error["fields"] == {"email": [f"{enrolled} is already enrolled in this course."]}
    error = refused(client, "post", enrollments, 400, {"email": "not an address"})
    assert error["fields"] == {"email": ["Enter a valid email address."]}
    # An enrollment is found only under its own course.
    other = CourseFactory(tenant=tenant_a.tenant)
    other.teachers.add(tenant_a.teacher.user)
    elsewhere = url(tenant_a, f"courses/{other.id}/enrollments/{tenant_a.enrollment.id}/")
    refused(client, "delete", elsewhere, 404)
