"""Courses, lessons and skills through the API: what each role lists and reads, what teachers
create and change, and bad input that names its field and writes nothing."""

import uuid

import pytest
from django_scopes import scopes_disabled

from apps.courses.models import Course, Lesson, Skill
from apps.tenants.models import Role
from tests.conftest import api_client_for
from tests.courses.bodies import course_body, lesson_body, page, skill_body
from tests.courses.conftest import refused, url
from tests.factories import (
    CourseFactory,
    EnrollmentFactory,
    LessonFactory,
    MembershipFactory,
    SkillFactory,
)


@pytest.mark.django_db
def test_a_teacher_creates_a_course_they_then_teach(tenant_a):
    teacher = tenant_a.teacher.user
    client = api_client_for(teacher)
    response = client.post(
        url(tenant_a, "courses/"),
        {"slug": "deep-learning", "title": "Deep learning", "summary": "  Layers.\n"},
        format="json",
    )
    assert response.status_code == 201, response.content
    with scopes_disabled():
        course = Course.objects.get(slug="deep-learning")
        assert (course.tenant, course.created_by, course.published_at) == (
            tenant_a.tenant,
            teacher,
            None,
        )
        assert list(course.teachers.all()) == [teacher]
    assert course.summary == "  Layers.\n"  # Markdown keeps its whitespace
    assert response.json() == course_body(course, [teacher])
    listing = client.get(url(tenant_a, "courses/")).json()
    assert listing == page(
        [course_body(course, [teacher]), course_body(tenant_a.course, [teacher])]
    )


@pytest.mark.django_db
def test_each_role_lists_the_courses_it_teaches_or_takes(tenant_a, tenant_b):
    learner = tenant_a.learner.user
    draft_taken = CourseFactory(tenant=tenant_a.tenant, title="A draft", published_at=None)
    EnrollmentFactory(course=draft_taken, user=learner)
    other = CourseFactory(tenant=tenant_a.tenant, title="Other teacher's course")
    other_teacher = MembershipFactory(tenant=tenant_a.tenant, role=Role.TEACHER).user
    other.teachers.add(other_teacher)
    # The teacher also takes a course they do not teach.
    EnrollmentFactory(course=other, user=tenant_a.teacher.user)

    def titles(user):
        body = api_client_for(user).get(url(tenant_a, "courses/")).json()
        assert body["count"] == len(body["results"])
        return [course["title"] for course in body["results"]]

    assert titles(tenant_a.admin.user) == ["A draft", "Neural networks at alpha", other.title]
    assert titles(tenant_a.teacher.user) == ["Neural networks at alpha", other.title]
    assert titles(other_teacher) == [other.title]
    assert titles(learner) == ["Neural networks at alpha"]
    assert titles(MembershipFactory(tenant=tenant_a.tenant).user) == []


@pytest.mark.django_db
def test_a_course_reads_the_same_for_who_teaches_and_who_takes_it(tenant_a):
    expected = course_body(tenant_a.course, [tenant_a.teacher.user])
    target = url(tenant_a, f"courses/{tenant_a.course.id}/")
    for user in (tenant_a.learner.user, tenant_a.teacher.user, tenant_a.admin.user):
        response = api_client_for(user).get(target)
        assert response.status_code == 200
        assert response.json() == expected


@pytest.mark.django_db
def test_a_teacher_changes_their_course(tenant_a):
    client = api_client_for(tenant_a.teacher.user)
    target = url(tenant_a, f"courses/{tenant_a.course.id}/")
    response = client.patch(target, {"title": "Networks", "summary": "New."}, format="json")
    assert response.status_code == 200, response.content
    tenant_a.course.refresh_from_db()
    assert (tenant_a.course.title, tenant_a.course.summary, tenant_a.course.slug) == (
        "Networks",
        "New.",
        "alpha-nn",
    )
    assert response.json() == course_body(tenant_a.course, [tenant_a.teacher.user])


@pytest.mark.django_db
def test_course_input_errors_name_the_field_and_change_nothing(tenant_a):
    client = api_client_for(tenant_a.teacher.user)
    CourseFactory(tenant=tenant_a.tenant, slug="taken")
    error = refused(
        client, "post", url(tenant_a, "courses/"), 400, {"slug": "Not A Slug", "title": "X"}
    )
    assert error["fields"] == {
        "slug": [
            "Enter a valid “slug” consisting of letters, numbers, underscores or hyphens.",
            "Use 1 to 50 lower-case letters, digits and inner hyphens.",
        ]
    }
    error = refused(client, "post", url(tenant_a, "courses/"), 400, {"slug": "taken", "title": "X"})
    assert error["fields"] == {"slug": ["A course with the slug 'taken' already exists here."]}
    error = refused(
        client,
        "patch",
        url(tenant_a, f"courses/{tenant_a.course.id}/"),
        400,
        {"slug": "taken", "title": ""},
    )
    assert error["fields"] == {"title": ["This field may not be blank."]}
    error = refused(
        client, "patch", url(tenant_a, f"courses/{tenant_a.course.id}/"), 400, {"slug": "taken"}
    )
    assert error["fields"] == {"slug": ["A course with the slug 'taken' already exists here."]}


@pytest.mark.django_db
def test_the_same_slug_is_free_in_another_tenant(tenant_a, tenant_b):
    client = api_client_for(tenant_a.teacher.user)
    response = client.post(
        url(tenant_a, "courses/"), {"slug": "beta-nn", "title": "B"}, format="json"
    )
    assert response.status_code == 201, response.content


@pytest.mark.django_db
def test_publishing_shows_a_course_to_its_learners_once(tenant_a):
    course = CourseFactory(tenant=tenant_a.tenant, published_at=None)
    course.teachers.add(tenant_a.teacher.user)
    EnrollmentFactory(course=course, user=tenant_a.learner.user)
    learner = api_client_for(tenant_a.learner.user)
    refused(learner, "get", url(tenant_a, f"courses/{course.id}/"), 404)

    client = api_client_for(tenant_a.teacher.user)
    response = client.post(url(tenant_a, f"courses/{course.id}/publish/"))
    assert response.status_code == 200
    course.refresh_from_db()
    first = course.published_at
    assert first is not None
    assert response.json() == course_body(course, [tenant_a.teacher.user])
    assert learner.get(url(tenant_a, f"courses/{course.id}/")).status_code == 200

    again = client.post(url(tenant_a, f"courses/{course.id}/publish/"))
    assert again.status_code == 200
    course.refresh_from_db()
    assert course.published_at == first


# --- Lessons ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_learners_read_the_lessons_in_order(tenant_a):
    later = LessonFactory(course=tenant_a.course, position=5, title="Later")
    response = api_client_for(tenant_a.learner.user).get(
        url(tenant_a, f"courses/{tenant_a.course.id}/lessons/")
    )
    assert response.status_code == 200
    assert response.json() == page(
        [lesson_body(tenant_a.lesson, [tenant_a.skill]), lesson_body(later, [])]
    )
    one = api_client_for(tenant_a.learner.user).get(
        url(tenant_a, f"courses/{tenant_a.course.id}/lessons/{later.id}/")
    )
    assert one.json() == lesson_body(later, [])


@pytest.mark.django_db
def test_a_teacher_adds_changes_and_deletes_lessons(tenant_a):
    client = api_client_for(tenant_a.teacher.user)
    lessons = url(tenant_a, f"courses/{tenant_a.course.id}/lessons/")
    other_skill = SkillFactory(tenant=tenant_a.tenant, slug="cnn", name="CNNs")
    response = client.post(
        lessons,
        {
            "title": "CNNs",
            "body": "# Convolutions\n",
            "skills": [str(other_skill.id), str(tenant_a.skill.id)],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    with scopes_disabled():
        created = Lesson.objects.get(pk=response.json()["id"])
    assert created.position == 2  # after the last one
    # Skills in name order: "CNNs" before "MLPs at alpha".
    assert response.json() == lesson_body(created, [other_skill, tenant_a.skill])

    response = client.patch(
        f"{lessons}{created.id}/", {"title": "Convolutions", "skills": []}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == lesson_body(created, [])
    assert created.title == "Convolutions"

    # Deleting the first leaves a gap; the next lesson still goes after the last.
    assert client.delete(f"{lessons}{tenant_a.lesson.id}/").status_code == 204
    response = client.post(lessons, {"title": "RNNs"}, format="json")
    assert response.json()["position"] == 3
    with scopes_disabled():
        positions = list(Lesson.objects.filter(course=tenant_a.course).values_list("position"))
    assert positions == [(2,), (3,)]


@pytest.mark.django_db
def test_lesson_input_errors_name_the_field_and_change_nothing(tenant_a, tenant_b):
    client = api_client_for(tenant_a.teacher.user)
    lessons = url(tenant_a, f"courses/{tenant_a.course.id}/lessons/")
    lesson_title = tenant_a.lesson.title
    error = refused(client, "post", lessons, 400, {"title": "Two", "position": 1})
    assert error["fields"] == {"position": [f"Position 1 is taken by '{lesson_title}'."]}
    error = refused(client, "post", lessons, 400, {"title": "Two", "position": 0})
    assert error["fields"] == {"position": ["Ensure this value is greater than or equal to 1."]}
    unknown = uuid.uuid4()
    # Another tenant's skill is as unknown here as a made-up id.
    error = refused(
        client,
        "post",
        lessons,
        400,
        {"title": "Two", "skills": [str(unknown), str(tenant_b.skill.id)]},
    )
    assert error["fields"] == {
        "skills": [
            f"No skill with the id {unknown} in this tenant.",
            f"No skill with the id {tenant_b.skill.id} in this tenant.",
        ]
    }
    second = LessonFactory(course=tenant_a.course, position=2)
    error = refused(client, "patch", f"{lessons}{second.id}/", 400, {"position": 1})
    assert error["fields"] == {"position": [f"Position 1 is taken by '{lesson_title}'."]}
    # A lesson is found only under its own course.
    other = CourseFactory(tenant=tenant_a.tenant)
    other.teachers.add(tenant_a.teacher.user)
    refused(client, "get", url(tenant_a, f"courses/{other.id}/lessons/{second.id}/"), 404)


# --- Skills -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_members_read_skills_and_teachers_add_and_change_them(tenant_a):
    skills = url(tenant_a, "skills/")
    learner = api_client_for(tenant_a.learner.user)
    assert learner.get(skills).json() == page([skill_body(tenant_a.skill)])

    client = api_client_for(tenant_a.teacher.user)
    response = client.post(
        skills,
        {"slug": "cnn", "name": "Convolutional networks", "description": "Filters."},
        format="json",
    )
    assert response.status_code == 201
    with scopes_disabled():
        skill = Skill.objects.get(slug="cnn")
    assert (skill.tenant, skill.name, skill.description) == (
        tenant_a.tenant,
        "Convolutional networks",
        "Filters.",
    )
    assert response.json() == skill_body(skill)
    assert learner.get(f"{skills}{skill.id}/").json() == skill_body(skill)

    response = client.patch(f"{skills}{skill.id}/", {"name": "CNNs"}, format="json")
    assert response.status_code == 200
    assert response.json() == skill_body(skill)
    assert skill.name == "CNNs"
    assert learner.get(skills).json() == page([skill_body(skill), skill_body(tenant_a.skill)])

    error = refused(client, "post", skills, 400, {"slug": "cnn", "name": "Again"})
    assert error["fields"] == {"slug": ["A skill with the slug 'cnn' already exists here."]}
