"""Learners' way in: "My courses", a course's page with its lessons and assignments, and joining
a course by its join code (pages and API), which teachers see, regenerate and turn off. Wrong
codes, turned-off codes, other tenants' learners and non-learners are refused with a clear
error and nothing is written."""

import re

import pytest
from django_scopes import scopes_disabled

from apps.courses.models import Course, Enrollment
from apps.courses.services import JOIN_CODE_ALPHABET, JOIN_CODE_LENGTH
from apps.tenants.models import Role
from tests.conftest import api_client_for, page_client_for
from tests.factories import CourseFactory, MembershipFactory
from tests.snapshots import db_snapshot

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def _code(world) -> str:
    """The teacher turns joining on from the course page; the code it shows."""
    teacher = page_client_for(world.teacher.user)
    response = teacher.post(
        f"/t/alpha/teach/courses/{world.course.id}/join-code/",
        {"action": "regenerate"},
        follow=True,
    )
    assert response.status_code == 200
    code = re.search(r'id="join-code">([A-Z0-9]+)<', response.content.decode()).group(1)
    assert len(code) == JOIN_CODE_LENGTH and set(code) <= set(JOIN_CODE_ALPHABET)
    return code


def _newcomer(world):
    """An invited learner of the tenant, in no course."""
    return MembershipFactory(tenant=world.tenant, role=Role.LEARNER).user


def _enrollments(user) -> list[str]:
    with scopes_disabled():
        return sorted(str(e.course_id) for e in Enrollment.objects.filter(user=user))


def test_a_new_learner_lands_on_a_dashboard_that_points_to_join_a_course(tenant_a):
    response = page_client_for(_newcomer(tenant_a)).get("/t/alpha/")
    assert response.status_code == 200
    text = _text(response)
    assert "Get started You are not in any course yet." in text
    assert 'href="/t/alpha/courses/#join-heading">Join a course</a>' in response.content.decode()
    # An enrolled learner does not get the "get started" note, but has the links.
    enrolled = page_client_for(tenant_a.learner.user).get("/t/alpha/").content.decode()
    assert 'id="get-started"' not in enrolled
    assert '<a href="/t/alpha/courses/">My courses</a>' in enrolled


def test_the_learner_joins_with_the_code_and_finds_the_course_its_lessons_and_assignments(
    tenant_a,
):
    code = _code(tenant_a)
    newcomer = _newcomer(tenant_a)
    client = page_client_for(newcomer)
    assert "You are not enrolled in any course yet." in _text(client.get("/t/alpha/courses/"))
    # Typed in lower case with a space in the middle: still the code.
    response = client.post("/t/alpha/courses/join/", {"code": f" {code[:4].lower()} {code[4:]}"})
    assert response.status_code == 302
    assert response["Location"] == f"/t/alpha/courses/{tenant_a.course.id}/"
    assert _enrollments(newcomer) == [str(tenant_a.course.id)]
    page = client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert f"You joined {tenant_a.course.title}." in html
    assert f'href="/t/alpha/lessons/{tenant_a.lesson.id}/"' in html
    assert f'href="/t/alpha/assignments/{tenant_a.assignment.id}/"' in html
    mine = client.get("/t/alpha/courses/").content.decode()
    assert f'<a href="/t/alpha/courses/{tenant_a.course.id}/">{tenant_a.course.title}</a>' in mine


@pytest.mark.parametrize(
    "code, message",
    [
        ("WRONG123", "No course here has the join code “WRONG123”: check it with your teacher"),
        ("", "This field is required."),
    ],
)
def test_a_wrong_code_is_a_clear_error_and_enrolls_nobody(tenant_a, code, message):
    _code(tenant_a)
    client = page_client_for(_newcomer(tenant_a))
    before = db_snapshot()
    response = client.post("/t/alpha/courses/join/", {"code": code})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert db_snapshot() == before


def test_a_turned_off_or_regenerated_code_stops_working(tenant_a):
    old = _code(tenant_a)
    new = _code(tenant_a)
    assert new != old
    client = page_client_for(_newcomer(tenant_a))
    before = db_snapshot()
    assert client.post("/t/alpha/courses/join/", {"code": old}).status_code == 400
    page_client_for(tenant_a.teacher.user).post(
        f"/t/alpha/teach/courses/{tenant_a.course.id}/join-code/", {"action": "disable"}
    )
    with scopes_disabled():
        assert Course.objects.get(pk=tenant_a.course.pk).join_code == ""
    teacher_page = page_client_for(tenant_a.teacher.user).get(
        f"/t/alpha/teach/courses/{tenant_a.course.id}/"
    )
    assert 'id="join-code-off"' in teacher_page.content.decode()
    before = db_snapshot()
    assert client.post("/t/alpha/courses/join/", {"code": new}).status_code == 400
    assert db_snapshot() == before


def test_a_learner_of_another_tenant_cannot_use_the_code(tenant_a, tenant_b):
    code = _code(tenant_a)
    other = page_client_for(tenant_b.learner.user)
    api = api_client_for(tenant_b.learner.user)
    before = db_snapshot()
    # In their own tenant the code names nothing; in tenant A they are not a member (404).
    response = other.post("/t/beta/courses/join/", {"code": code})
    assert response.status_code == 400 and "No course here has the join code" in _text(response)
    assert other.post("/t/alpha/courses/join/", {"code": code}).status_code == 404
    assert (
        api.post("/api/v1/t/beta/courses/join/", {"code": code}, format="json").status_code == 400
    )
    assert db_snapshot() == before


def test_a_teacher_cannot_join_as_a_learner_and_an_unpublished_course_takes_nobody(tenant_a):
    code = _code(tenant_a)
    other_teacher = MembershipFactory(tenant=tenant_a.tenant, role=Role.TEACHER).user
    draft = CourseFactory(tenant=tenant_a.tenant, slug="draft", published_at=None)
    with scopes_disabled():
        draft.join_code = "DRAFT234"
        draft.save()
    teacher, learner = page_client_for(other_teacher), page_client_for(_newcomer(tenant_a))
    before = db_snapshot()
    response = teacher.post("/t/alpha/courses/join/", {"code": code})
    assert response.status_code == 400
    assert "Only learners of this tenant join courses by code." in _text(response)
    response = learner.post("/t/alpha/courses/join/", {"code": "DRAFT234"})
    assert response.status_code == 400
    assert db_snapshot() == before


def test_a_course_page_is_404_to_a_learner_not_enrolled(tenant_a):
    response = page_client_for(_newcomer(tenant_a)).get(f"/t/alpha/courses/{tenant_a.course.id}/")
    assert response.status_code == 404


def test_the_api_joins_by_code_and_teachers_manage_the_code(tenant_a):
    course_url = f"/api/v1/t/alpha/courses/{tenant_a.course.id}/join-code/"
    teacher = api_client_for(tenant_a.teacher.user)
    assert teacher.get(course_url).json() == {"join_code": ""}
    code = teacher.post(course_url).json()["join_code"]
    assert len(code) == JOIN_CODE_LENGTH
    assert teacher.get(course_url).json() == {"join_code": code}
    # A learner neither reads nor changes it (enrolled: 403), and it is not in the course.
    learner = api_client_for(tenant_a.learner.user)
    assert learner.get(course_url).status_code == 403
    assert "join_code" not in learner.get(f"/api/v1/t/alpha/courses/{tenant_a.course.id}/").json()
    newcomer = _newcomer(tenant_a)
    api = api_client_for(newcomer)
    before = db_snapshot()
    wrong = api.post("/api/v1/t/alpha/courses/join/", {"code": "NOPE2345"}, format="json")
    assert wrong.status_code == 400
    assert "No course here has the join code “NOPE2345”" in wrong.content.decode()
    assert db_snapshot() == before
    response = api.post("/api/v1/t/alpha/courses/join/", {"code": code}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["course"] == str(tenant_a.course.id)
    assert _enrollments(newcomer) == [str(tenant_a.course.id)]
    again = api.post("/api/v1/t/alpha/courses/join/", {"code": code}, format="json")
    assert again.status_code == 400
    assert f"You are already enrolled in {tenant_a.course.title}." in again.content.decode()
    assert teacher.delete(course_url).json() == {"join_code": ""}
