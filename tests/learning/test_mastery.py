"""Knowledge tracing per tenant (the fit over stored observations, mastery recomputed), the
learner's mastery and next step, the teacher's grid, and the tutor settings API."""

import pytest
import torch
from django_scopes import scopes_disabled

from apps.audit.models import AuditEntry
from apps.learning import bkt
from apps.learning.crypto import decrypt
from apps.learning.models import Mastery, Observation, SkillParams, TutorSettings
from apps.learning.tracing import bkt_fit_tenant, sequences_of
from tests.conftest import api_client_for
from tests.factories import (
    AssignmentFactory,
    ExerciseFactory,
    LessonFactory,
    MembershipFactory,
    SkillFactory,
    SubmissionFactory,
    graded_submission,
)
from tests.snapshots import db_snapshot


def _observe(world, learner, skill, outcomes):
    with scopes_disabled():
        for n, correct in enumerate(outcomes):
            submission = SubmissionFactory(
                assignment=world.assignment, learner=learner, attempt=200 + n
            )
            Observation.objects.create(
                tenant=world.tenant,
                user=learner,
                skill=skill,
                submission=submission,
                correct=correct,
            )


@pytest.mark.django_db
def test_the_fit_recovers_parameters_and_recomputes_mastery(tenant_a):
    """Observations generated from known parameters for 60 learners: the fitted parameters come
    close to them, and each learner's mastery is what the BKT update gives step by step."""
    truth = bkt.BKTParams(
        prior=torch.tensor([0.25], dtype=torch.float64),
        learn=torch.tensor([0.2], dtype=torch.float64),
        slip=torch.tensor([0.08], dtype=torch.float64),
        guess=torch.tensor([0.22], dtype=torch.float64),
    )
    correct, mask = bkt.simulate(
        truth, learners=60, opportunities=12, generator=torch.Generator().manual_seed(3)
    )[:2]
    learners = [MembershipFactory(tenant=tenant_a.tenant).user for _ in range(60)]
    for n, learner in enumerate(learners):
        _observe(tenant_a, learner, tenant_a.skill, [bool(v) for v in correct[n, mask[n]]])
    summary = bkt_fit_tenant(tenant_a.tenant.id)
    assert (summary.skills, summary.learners, summary.observations) == (1, 60, 720)
    with scopes_disabled():
        fitted = SkillParams.objects.get(skill=tenant_a.skill)
        assert (fitted.learners, fitted.observations) == (60, 720)
        assert fitted.fitted_at is not None
        # 720 observations is few; the fit lands near the truth, not on it.
        assert abs(fitted.slip - 0.08) < 0.1 and abs(fitted.guess - 0.22) < 0.15
        for n, learner in enumerate(learners[:5]):
            expected = fitted.prior
            for value in correct[n, mask[n]]:
                expected = bkt.update(
                    expected, bool(value), learn=fitted.learn, slip=fitted.slip, guess=fitted.guess
                )
            row = Mastery.objects.get(user=learner, skill=tenant_a.skill)
            assert row.probability == pytest.approx(expected, abs=1e-9)
            assert row.observations == int(mask[n].sum())


def test_mastery_after_matches_the_update_step_by_step():
    rows = [("a", "s", True), ("a", "s", False), ("b", "s", True), ("a", "t", True)]
    seqs = sequences_of(rows)
    params = bkt.BKTParams(
        prior=torch.tensor([0.3, 0.1], dtype=torch.float64),
        learn=torch.tensor([0.2, 0.4], dtype=torch.float64),
        slip=torch.tensor([0.1, 0.05], dtype=torch.float64),
        guess=torch.tensor([0.25, 0.2], dtype=torch.float64),
    )
    known = bkt.mastery_after(params, seqs.correct, seqs.mask, seqs.skill)
    assert seqs.keys == [("a", "s"), ("b", "s"), ("a", "t")]
    step = bkt.update(
        bkt.update(0.3, True, learn=0.2, slip=0.1, guess=0.25),
        False,
        learn=0.2,
        slip=0.1,
        guess=0.25,
    )
    assert known.tolist() == pytest.approx(
        [
            step,
            bkt.update(0.3, True, learn=0.2, slip=0.1, guess=0.25),
            bkt.update(0.1, True, learn=0.4, slip=0.05, guess=0.2),
        ]
    )


@pytest.mark.django_db
def test_a_tenant_without_observations_fits_nothing(tenant_a, tenant_b):
    _observe(tenant_b, tenant_b.learner.user, tenant_b.skill, [True, True])
    assert bkt_fit_tenant(tenant_a.tenant.id).observations == 0
    with scopes_disabled():
        assert not SkillParams.objects.exists()  # tenant B's observations are not A's


def _skill_world(world):
    """Skills: basics (no prerequisite), training (needs basics), cnn (needs training); the
    course's lesson teaches basics and training; an open assignment practises training."""
    basics = world.skill
    training = SkillFactory(tenant=world.tenant, slug="training", name="Training")
    cnn = SkillFactory(tenant=world.tenant, slug="cnn", name="Convolutions")
    with scopes_disabled():
        training.prerequisites.add(basics)
        cnn.prerequisites.add(training)
        world.lesson.skills.add(training)
        cnn_lesson = LessonFactory(course=world.course, title="Convolutions")
        cnn_lesson.skills.add(cnn)
        exercise = ExerciseFactory(course=world.course, title="Train well")
        exercise.skills.add(training)
        practice = AssignmentFactory(exercise=exercise)
    return basics, training, cnn, practice, cnn_lesson


def _mastery(world, skill, probability):
    with scopes_disabled():
        Mastery.objects.update_or_create(
            user=world.learner.user,
            skill=skill,
            defaults={"tenant": world.tenant, "probability": probability, "observations": 3},
        )


@pytest.mark.django_db
def test_the_next_step_is_the_weakest_skill_whose_prerequisites_are_mastered(tenant_a):
    basics, training, cnn, practice, cnn_lesson = _skill_world(tenant_a)
    api = api_client_for(tenant_a.learner.user)
    # Nothing mastered: only basics has no prerequisite.
    body = api.get("/api/v1/t/alpha/me/mastery/").json()
    assert [(s["slug"], s["probability"], s["mastered"]) for s in body["skills"]] == [
        ("cnn", 0.2, False),
        (basics.slug, 0.2, False),
        ("training", 0.2, False),
    ]
    assert body["recommendation"]["skill"] == str(basics.id)
    assert body["recommendation"]["kind"] == "assignment"
    assert body["recommendation"]["url"] == f"/t/alpha/assignments/{tenant_a.assignment.id}/"
    assert body["recommendation"]["sentence"] == (
        f"Practise it with “{tenant_a.exercise.title}”: {basics.name} is your weakest skill "
        "(20% mastered) and it has no prerequisites."
    )
    # Basics mastered: training (40%) is now ready; cnn still waits for it.
    _mastery(tenant_a, basics, 0.97)
    _mastery(tenant_a, training, 0.4)
    step = api.get("/api/v1/t/alpha/me/mastery/").json()["recommendation"]
    assert step["sentence"] == (
        "Practise it with “Train well”: Training is your weakest skill (40% mastered) and you "
        f"have mastered its prerequisites ({basics.name})."
    )
    assert step["url"] == f"/t/alpha/assignments/{practice.id}/"
    # Training mastered: cnn, with no open assignment, sends the learner to its lesson.
    _mastery(tenant_a, training, 0.96)
    step = api.get("/api/v1/t/alpha/me/mastery/").json()["recommendation"]
    assert (step["kind"], step["title"], step["url"]) == (
        "lesson",
        "Convolutions",
        f"/t/alpha/lessons/{cnn_lesson.id}/",
    )
    assert step["sentence"] == (
        "Read “Convolutions”: Convolutions is your weakest skill (20% mastered) and you have "
        "mastered its prerequisites (Training)."
    )
    _mastery(tenant_a, cnn, 0.99)
    step = api.get("/api/v1/t/alpha/me/mastery/").json()["recommendation"]
    assert step == {
        "sentence": "You have mastered every skill of your courses: well done.",
        "skill": None,
        "kind": None,
        "title": None,
        "url": None,
    }


@pytest.mark.django_db
def test_a_skill_whose_latest_graded_work_is_at_full_marks_is_not_recommended(tenant_a):
    """A score of 100 on the XOR exercise moves BKT only part of the way (70% here): the next
    step must not send the learner back to practise it, and the skills that need it open."""
    basics, training, _, practice, _ = _skill_world(tenant_a)
    _mastery(tenant_a, basics, 0.7)
    graded_submission(
        assignment=tenant_a.assignment, learner=tenant_a.learner.user, attempt=5, score=100
    )
    api = api_client_for(tenant_a.learner.user)
    step = api.get("/api/v1/t/alpha/me/mastery/").json()["recommendation"]
    assert step["sentence"] == (
        "Practise it with “Train well”: Training is your weakest skill (20% mastered) and you "
        f"have mastered its prerequisites ({basics.name})."
    )
    assert (step["skill"], step["url"]) == (
        str(training.id),
        f"/t/alpha/assignments/{practice.id}/",
    )
    # A later attempt below full marks: the skill is to practise again.
    graded_submission(
        assignment=tenant_a.assignment, learner=tenant_a.learner.user, attempt=6, score=80
    )
    step = api.get("/api/v1/t/alpha/me/mastery/").json()["recommendation"]
    assert step["skill"] == str(basics.id)
    assert step["sentence"] == (
        f"Practise it with “{tenant_a.exercise.title}”: {basics.name} is your weakest skill "
        "(70% mastered) and it has no prerequisites."
    )


@pytest.mark.django_db
def test_a_prerequisite_cycle_is_refused_saying_which(tenant_a):
    basics, _training, cnn, *_ = _skill_world(tenant_a)
    teacher = api_client_for(tenant_a.teacher.user)
    before = db_snapshot()
    response = teacher.patch(
        f"/api/v1/t/alpha/skills/{basics.id}/", {"prerequisites": [str(cnn.id)]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "prerequisites": ["'Convolutions' already requires 'MLPs at alpha': that would be a cycle."]
    }
    itself = teacher.patch(
        f"/api/v1/t/alpha/skills/{basics.id}/", {"prerequisites": [str(basics.id)]}, format="json"
    )
    assert itself.json()["error"]["fields"] == {
        "prerequisites": ["A skill cannot be its own prerequisite."]
    }
    assert db_snapshot() == before
    ok = teacher.patch(
        f"/api/v1/t/alpha/skills/{cnn.id}/", {"prerequisites": [str(basics.id)]}, format="json"
    )
    assert ok.status_code == 200
    assert ok.json()["prerequisites"] == [str(basics.id)]


@pytest.mark.django_db
def test_the_teacher_sees_the_course_grid_and_others_do_not(tenant_a, tenant_b):
    basics, training, *_ = _skill_world(tenant_a)
    _mastery(tenant_a, training, 0.5)
    grid = api_client_for(tenant_a.teacher.user).get(
        f"/api/v1/t/alpha/courses/{tenant_a.course.id}/mastery/"
    )
    assert grid.status_code == 200
    body = grid.json()
    assert [s["slug"] for s in body["skills"]] == ["cnn", basics.slug, "training"]
    assert body["learners"] == [
        {
            "id": str(tenant_a.learner.user.id),
            "email": tenant_a.learner.user.email,
            "mastery": [None, None, 0.5],
        }
    ]
    learner = api_client_for(tenant_a.learner.user).get(
        f"/api/v1/t/alpha/courses/{tenant_a.course.id}/mastery/"
    )
    assert learner.status_code == 403


@pytest.mark.django_db
def test_the_administrator_sets_the_tutor_endpoint_with_the_key_encrypted(tenant_a, settings):
    settings.TUTOR_ENDPOINT_ALLOWED_HOSTS = ["vllm.school.internal"]  # on the school's network
    admin = api_client_for(tenant_a.admin.user)
    url = "/api/v1/t/alpha/tutor/settings/"
    assert admin.get(url).json() == {
        "backend": "grounded",
        "endpoint_url": "",
        "model": "",
        "has_api_key": False,
        "tokens_per_month": 200000,
    }
    body = {
        "endpoint_url": "http://vllm.school.internal:8000/v1",
        "model": "qwen2.5-7b-instruct",
        "api_key": "sk-very-secret",
        "tokens_per_month": 50000,
    }
    response = admin.put(url, body, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "backend": "endpoint",
        "endpoint_url": "http://vllm.school.internal:8000/v1",
        "model": "qwen2.5-7b-instruct",
        "has_api_key": True,
        "tokens_per_month": 50000,
    }
    with scopes_disabled():
        row = TutorSettings.objects.get(tenant=tenant_a.tenant)
        assert "sk-very-secret" not in row.api_key_encrypted
        assert decrypt(row.api_key_encrypted) == "sk-very-secret"
        entry = AuditEntry.objects.get(action="tutor.settings")
        assert "sk-very-secret" not in str(entry.after)
    # Leaving the key out keeps it; an empty key removes it.
    del body["api_key"]
    admin.put(url, body, format="json")
    with scopes_disabled():
        assert decrypt(TutorSettings.objects.get().api_key_encrypted) == "sk-very-secret"
    admin.put(url, {**body, "api_key": ""}, format="json")
    assert admin.get(url).json()["has_api_key"] is False


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["teacher", "learner"])
def test_only_administrators_see_or_set_the_tutor(tenant_a, role):
    client = api_client_for(getattr(tenant_a, role).user)
    before = db_snapshot()
    body = {"endpoint_url": "http://x.example/v1", "model": "m", "tokens_per_month": 1}
    assert client.get("/api/v1/t/alpha/tutor/settings/").status_code == 403
    assert client.put("/api/v1/t/alpha/tutor/settings/", body, format="json").status_code == 403
    assert db_snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"endpoint_url": "not a url"}, "endpoint_url", "Enter a valid URL."),
        (
            {"endpoint_url": "ftp://x.example/v1"},
            "endpoint_url",
            "The endpoint must be an http:// or https:// URL.",
        ),
        ({"model": ""}, "model", "Name the model the endpoint serves."),
        (
            {"tokens_per_month": -1},
            "tokens_per_month",
            "Ensure this value is greater than or equal to 0.",
        ),
    ],
)
def test_bad_tutor_settings_are_refused_and_change_nothing(tenant_a, change, field, message):
    body = {"endpoint_url": "http://x.example/v1", "model": "m", "tokens_per_month": 10} | change
    admin = api_client_for(tenant_a.admin.user)
    before = db_snapshot()
    response = admin.put("/api/v1/t/alpha/tutor/settings/", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"][field] == [message]
    assert db_snapshot() == before


@pytest.mark.django_db
def test_a_teacher_asks_for_a_fit_and_the_task_is_queued(
    tenant_a, django_capture_on_commit_callbacks
):
    """The fit API queues the Celery task on the default queue (a worker runs it: test_worker)."""
    import json

    import redis
    from django.conf import settings

    broker = redis.Redis.from_url(settings.REDIS_URL)
    broker.delete("default")
    learner = api_client_for(tenant_a.learner.user)
    before = db_snapshot()
    with django_capture_on_commit_callbacks(execute=True):
        refused = learner.post("/api/v1/t/alpha/knowledge-tracing/fit/")
    assert refused.status_code == 403
    assert (db_snapshot(), broker.llen("default")) == (before, 0)
    with django_capture_on_commit_callbacks(execute=True):
        queued = api_client_for(tenant_a.teacher.user).post(
            "/api/v1/t/alpha/knowledge-tracing/fit/"
        )
    assert (queued.status_code, queued.json()) == (202, {"queued": True})
    [message] = broker.lrange("default", 0, -1)
    headers = json.loads(message)["headers"]
    assert (headers["task"], headers["argsrepr"]) == (
        "apps.learning.tasks.bkt_fit",
        repr((str(tenant_a.tenant.id),)),
    )
    broker.delete("default")
