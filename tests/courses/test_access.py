"""The courses API's access rule (apps/courses/apis.py): 404 for what the caller cannot see, 403
for what they can see (or, as a teacher of the tenant, could teach) but may not change. Every
refusal is checked for its status, its error and that nothing changed. Every refused write
carries a valid body, so a wrongly granted one would succeed and fail the test."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.tenants.models import Role
from tests.conftest import api_client_for
from tests.courses.conftest import refused, url
from tests.factories import AssignmentFactory, MembershipFactory

pytestmark = pytest.mark.calendar  # windows, periods, expiries: relative to today


def _operations(w) -> dict[str, list[tuple]]:
    course = f"courses/{w.course.id}/"
    now = timezone.now()
    dates = {"opens_at": now.isoformat(), "due_at": (now + timedelta(days=1)).isoformat()}
    exercise = {"title": "New", "dataset": "xor", "min_metric": 0.5, "target_metric": 0.9}
    return {
        "read": [
            ("get", course, None),
            ("get", f"{course}lessons/", None),
            ("get", f"{course}lessons/{w.lesson.id}/", None),
            ("get", f"{course}assignments/", None),
            ("get", f"assignments/{w.assignment.id}/", None),
        ],
        "teacher read": [
            ("get", f"{course}exercises/", None),
            ("get", f"exercises/{w.exercise.id}/", None),
            ("get", f"{course}enrollments/", None),
        ],
        "write": [
            ("patch", course, {"title": "Taken over"}),
            ("post", f"{course}publish/", None),
            ("post", f"{course}lessons/", {"title": "New"}),
            ("patch", f"{course}lessons/{w.lesson.id}/", {"title": "Changed"}),
            ("delete", f"{course}lessons/{w.lesson.id}/", None),
            ("post", f"{course}exercises/", exercise),
            ("patch", f"exercises/{w.exercise.id}/", {"title": "Changed"}),
            ("post", f"{course}assignments/", {"exercise": str(w.exercise.id), **dates}),
            ("patch", f"assignments/{w.assignment.id}/", {"max_attempts": 9}),
            ("post", f"assignments/{w.assignment.id}/publish/", None),
            ("post", f"{course}enrollments/", {"email": w.admin.user.email}),
            ("delete", f"{course}enrollments/{w.enrollment.id}/", None),
        ],
        "tenant write": [
            ("post", "courses/", {"slug": "new", "title": "New"}),
            ("post", "skills/", {"slug": "new", "name": "New"}),
            ("patch", f"skills/{w.skill.id}/", {"name": "Changed"}),
        ],
    }


def _assert_refused(client, world, operations, status, message=None):
    assert operations
    for method, path, body in operations:
        error = refused(client, method, url(world, path), status, body)
        assert error["code"] == {403: "permission_denied", 404: "not_found"}[status]
        if message is not None:
            assert error["message"] == message, (method, path)


def _assert_allowed(client, world, operations):
    for method, path, body in operations:
        response = getattr(client, method)(url(world, path), data=body, format="json")
        assert response.status_code == 200, (method, path, response.content[:300])


NOT_TEACHER = "This needs a teacher of this course."
NOT_TEACHER_ROLE = "This needs the teacher role in this tenant."


@pytest.mark.django_db
def test_an_enrolled_learner_reads_but_changes_nothing(tenant_a):
    client = api_client_for(tenant_a.learner.user)
    ops = _operations(tenant_a)
    _assert_allowed(client, tenant_a, ops["read"])
    _assert_refused(client, tenant_a, ops["teacher read"] + ops["write"], 403, NOT_TEACHER)
    _assert_refused(client, tenant_a, ops["tenant write"], 403, NOT_TEACHER_ROLE)


@pytest.mark.django_db
def test_a_learner_not_enrolled_finds_no_course(tenant_a):
    client = api_client_for(MembershipFactory(tenant=tenant_a.tenant, role=Role.LEARNER).user)
    ops = _operations(tenant_a)
    _assert_refused(client, tenant_a, ops["read"] + ops["teacher read"] + ops["write"], 404)
    _assert_refused(client, tenant_a, ops["tenant write"], 403, NOT_TEACHER_ROLE)


@pytest.mark.django_db
def test_an_unpublished_course_does_not_exist_for_its_learners(tenant_a):
    tenant_a.course.published_at = None
    tenant_a.course.save()
    client = api_client_for(tenant_a.learner.user)
    ops = _operations(tenant_a)
    _assert_refused(client, tenant_a, ops["read"] + ops["teacher read"] + ops["write"], 404)
    assert client.get(url(tenant_a, "me/assignments/")).json()["count"] == 0


@pytest.mark.django_db
def test_an_unpublished_assignment_does_not_exist_for_learners(tenant_a):
    draft = AssignmentFactory(exercise=tenant_a.exercise, published_at=None)
    client = api_client_for(tenant_a.learner.user)
    for method, path, body in [
        ("get", f"assignments/{draft.id}/", None),
        ("patch", f"assignments/{draft.id}/", {"max_attempts": 9}),
        ("post", f"assignments/{draft.id}/publish/", None),
    ]:
        assert refused(client, method, url(tenant_a, path), 404, body)["code"] == "not_found"


@pytest.mark.django_db
def test_a_teacher_who_does_not_teach_the_course_cannot_see_or_change_it(tenant_a):
    client = api_client_for(MembershipFactory(tenant=tenant_a.tenant, role=Role.TEACHER).user)
    ops = _operations(tenant_a)
    _assert_refused(client, tenant_a, ops["read"] + ops["teacher read"], 404)
    _assert_refused(client, tenant_a, ops["write"], 403, NOT_TEACHER)


@pytest.mark.django_db
def test_a_tenant_admin_teaches_every_course(tenant_a):
    client = api_client_for(tenant_a.admin.user)
    ops = _operations(tenant_a)
    _assert_allowed(client, tenant_a, ops["read"] + ops["teacher read"])
    response = client.patch(
        url(tenant_a, f"courses/{tenant_a.course.id}/"), {"title": "Mine"}, format="json"
    )
    assert response.status_code == 200
    tenant_a.course.refresh_from_db()
    assert tenant_a.course.title == "Mine"


@pytest.mark.django_db
def test_another_tenant_finds_nothing(tenant_a, tenant_b):
    outsider = api_client_for(tenant_b.admin.user)
    ops = _operations(tenant_a)
    everything = ops["read"] + ops["teacher read"] + ops["write"] + ops["tenant write"]
    _assert_refused(outsider, tenant_a, everything, 404)  # not a member of tenant A
    # Their own tenant's URL with tenant A's ids: the scope hides the objects.
    _assert_refused(outsider, tenant_b, ops["read"] + ops["teacher read"] + ops["write"], 404)
    theirs = outsider.get(url(tenant_b, "courses/")).json()["results"]
    assert [course["id"] for course in theirs] == [str(tenant_b.course.id)]


@pytest.mark.django_db
def test_anonymous_requests_are_refused(tenant_a):
    ops = _operations(tenant_a)
    for method, path, body in ops["read"] + ops["write"] + [("get", "me/assignments/", None)]:
        error = refused(api_client_for(None), method, url(tenant_a, path), 401, body)
        assert error["code"] == "not_authenticated"
