"""The xAPI export: every statement Aula writes validates against the statement structure;
who may read which statements; and the schema refuses what the specification forbids."""

import copy

import pytest

from apps.learning.xapi import statement_problems
from tests.conftest import api_client_for, page_client_for
from tests.learning.test_records import OVERFITTING, _run
from tests.snapshots import db_snapshot

EXPORT = "/api/v1/t/alpha/xapi/statements/"


def _every_kind_of_statement(world):
    """A lesson view, a graded run with a hint (attempted, received-hint, scored, completed),
    and an override."""
    page_client_for(world.learner.user).get(f"/t/alpha/lessons/{world.lesson.id}/")
    _run(world, OVERFITTING)
    api_client_for(world.teacher.user).post(
        f"/api/v1/t/alpha/submissions/{world.submission.id}/grade/",
        {"score": "90", "reason": "Explained it well"},
        format="json",
    )


@pytest.mark.django_db
def test_the_export_holds_every_statement_and_each_validates(tenant_a):
    _every_kind_of_statement(tenant_a)
    response = api_client_for(tenant_a.admin.user).get(EXPORT)
    assert response.status_code == 200
    assert response["X-Experience-API-Version"] == "1.0.3"
    body = response.json()
    assert body["more"] == ""
    verbs = [s["verb"]["id"].rsplit("/", 1)[-1] for s in body["statements"]]
    assert verbs == ["experienced", "attempted", "received-hint", "scored", "completed", "scored"]
    for statement in body["statements"]:
        assert statement_problems(statement) == [], statement
    first = body["statements"][0]
    mbox = f"mailto:{tenant_a.learner.user.email}"
    assert first["actor"] == {"objectType": "Agent", "mbox": mbox}
    assert first["verb"] == {
        "id": "http://adlnet.gov/expapi/verbs/experienced",
        "display": {"en": "viewed a lesson"},
    }
    assert first["object"] == {
        "objectType": "Activity",
        "id": f"https://aula.example/xapi/lesson/{tenant_a.lesson.id}",
        "definition": {
            "name": {"en": tenant_a.lesson.title},
            "type": "http://adlnet.gov/expapi/activities/lesson",
        },
    }
    assert first["context"] == {
        "platform": "Aula",
        "contextActivities": {
            "grouping": [
                {"objectType": "Activity", "id": "https://aula.example/xapi/tenant/alpha"},
                {
                    "objectType": "Activity",
                    "id": f"https://aula.example/xapi/course/{tenant_a.course.id}",
                },
            ]
        },
    }
    hint = body["statements"][2]
    assert hint["verb"]["id"] == "https://aula.example/xapi/verbs/received-hint"
    assert hint["context"]["contextActivities"]["parent"] == [
        {
            "objectType": "Activity",
            "id": f"https://aula.example/xapi/assignment/{tenant_a.assignment.id}",
        }
    ]


@pytest.mark.django_db
def test_filters_by_learner_course_and_verb(tenant_a):
    _every_kind_of_statement(tenant_a)
    admin = api_client_for(tenant_a.admin.user)
    learner_id = tenant_a.learner.user.id
    scored = admin.get(EXPORT, {"learner": learner_id, "verb": "scored"}).json()["statements"]
    assert [s["result"]["score"]["raw"] for s in scored] == [91.11, 90.0]
    of_course = admin.get(EXPORT, {"course": tenant_a.course.id}).json()["statements"]
    assert len(of_course) == 6
    teacher = admin.get(EXPORT, {"learner": tenant_a.teacher.user.id}).json()
    assert teacher == {"statements": [], "more": ""}


@pytest.mark.django_db
def test_the_export_pages_with_more(tenant_a, settings, monkeypatch):
    monkeypatch.setattr("apps.learning.apis.EXPORT_PAGE", 4)
    _every_kind_of_statement(tenant_a)
    admin = api_client_for(tenant_a.admin.user)
    first = admin.get(EXPORT, {"verb": "scored"}).json()
    assert len(first["statements"]) == 2 and first["more"] == ""
    page = admin.get(EXPORT).json()
    assert len(page["statements"]) == 4
    assert page["more"].startswith(EXPORT + "?after=")
    rest = admin.get(page["more"]).json()
    assert len(rest["statements"]) == 2 and rest["more"] == ""
    ids = [s["id"] for s in page["statements"] + rest["statements"]]
    assert len(set(ids)) == 6


@pytest.mark.django_db
def test_a_learner_reads_their_own_statements_only(tenant_a):
    _every_kind_of_statement(tenant_a)
    learner = api_client_for(tenant_a.learner.user)
    own = learner.get(EXPORT).json()["statements"]
    assert len(own) == 6
    assert {s["actor"]["mbox"] for s in own} == {f"mailto:{tenant_a.learner.user.email}"}
    before = db_snapshot()
    other = learner.get(EXPORT, {"learner": tenant_a.teacher.user.id})
    assert other.status_code == 403
    assert other.json()["error"]["message"] == "You may read your own statements only."
    assert db_snapshot() == before


@pytest.mark.django_db
def test_a_teacher_reads_the_courses_they_teach_only(tenant_a):
    from tests.factories import CourseFactory

    _every_kind_of_statement(tenant_a)
    teacher = api_client_for(tenant_a.teacher.user)
    taught = teacher.get(EXPORT, {"course": tenant_a.course.id}).json()["statements"]
    assert len(taught) == 6
    other_course = CourseFactory(tenant=tenant_a.tenant, slug="other")
    refused = teacher.get(EXPORT, {"course": other_course.id})
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "This needs a teacher of this course."


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query, field, message",
    [
        ({"course": "not-a-uuid"}, "course", "Must be a valid UUID."),
        ({"verb": "ran"}, "verb", '"ran" is not a valid choice.'),
        ({"after": "-1"}, "after", "Ensure this value is greater than or equal to 0."),
        (
            {"learner": "00000000-0000-4000-8000-000000000000"},
            "learner",
            "No member with this id in this tenant.",
        ),
        (
            {"course": "00000000-0000-4000-8000-000000000000"},
            "course",
            "No course with this id in this tenant.",
        ),
        ({"colour": "blue"}, "colour", "Unknown field; this endpoint does not accept it."),
    ],
)
def test_bad_filters_are_refused_saying_which(tenant_a, query, field, message):
    response = api_client_for(tenant_a.admin.user).get(EXPORT, query)
    assert response.status_code == 400
    assert response.json()["error"]["fields"][field] == [message]


def _valid_statement(tenant_a):
    _every_kind_of_statement(tenant_a)
    return api_client_for(tenant_a.admin.user).get(EXPORT).json()["statements"][3]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda s: s.pop("actor"), "(statement): 'actor' is a required property"),
        (lambda s: s["actor"].update(mbox="a@example.org"), "actor/mbox: 'a@example.org' does"),
        (lambda s: s["verb"].update(id="scored"), "verb/id: 'scored' does not match"),
        (
            lambda s: s["result"]["score"].update(scaled=1.5),
            "result/score/scaled: 1.5 is greater than the maximum of 1",
        ),
        (lambda s: s["result"]["score"].update(raw=101), "result/score/raw: above result/score"),
        (lambda s: s["result"].update(duration="12 s"), "result/duration: '12 s' does not match"),
        (lambda s: s.update(timestamp="2026-11-22T10:00:00"), "timestamp: '2026-11-22T10:00:00'"),
        (
            lambda s: s["object"]["definition"].update(name="Exercise"),
            "object/definition/name: 'Exercise' is not of type 'object'",
        ),
        (lambda s: s.update(id="42"), "id: '42' does not match"),
        (
            lambda s: s.update(colour="blue"),
            "(statement): Additional properties are not allowed ('colour' was unexpected)",
        ),
    ],
)
def test_the_schema_refuses_what_xapi_forbids(tenant_a, change, problem):
    statement = _valid_statement(tenant_a)
    assert statement_problems(statement) == []
    broken = copy.deepcopy(statement)
    change(broken)
    problems = statement_problems(broken)
    assert len(problems) == 1, problems
    assert problems[0].startswith(problem), problems
