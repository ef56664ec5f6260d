"""With a real Celery worker: a run trained and graded by the worker leaves its learning records
and moves mastery; a teacher's refit runs as a task and recomputes mastery with the fitted
parameters."""

import pytest
from django_scopes import scopes_disabled

from apps.jobs.models import Job
from apps.learning import bkt
from apps.learning.models import Mastery, Observation, SkillParams, Statement
from runtime.templates import TEMPLATES
from tests.conftest import api_client_for, page_client_for, wait_for


@pytest.mark.django_db(transaction=True)
def test_a_graded_run_on_the_worker_records_and_a_refit_recomputes(celery_worker_process, tenant_a):
    learner = tenant_a.learner.user
    response = api_client_for(learner).post(
        f"/api/v1/t/alpha/assignments/{tenant_a.assignment.id}/submissions/",
        {"kind": "spec", "spec": TEMPLATES["xor"].spec},
        format="json",
    )
    assert response.status_code == 201, response.content
    job_id = response.json()["job"]["id"]

    def finished():
        with scopes_disabled():
            return Job.objects.get(id=job_id).state in ("succeeded", "failed")

    wait_for(finished, timeout=120, message="the XOR run to finish on the worker")
    with scopes_disabled():
        job = Job.objects.get(id=job_id)
        assert job.state == "succeeded", job.message
        verbs = list(
            Statement.objects.filter(actor=learner).order_by("id").values_list("verb", flat=True)
        )
        # Attempted at submit; the hints (if any), the grade and the run's end at the finish.
        assert verbs[0] == "attempted"
        assert verbs[-2:] == ["scored", "completed"]
        assert set(verbs[1:-2]) <= {"received-hint"}
        [observation] = Observation.objects.filter(user=learner)
        assert observation.correct is True  # XOR trains to 100%
        mastery = Mastery.objects.get(user=learner, skill=tenant_a.skill)
        assert mastery.probability == pytest.approx(
            bkt.update(0.2, True, learn=0.15, slip=0.1, guess=0.2)
        )

    refit = page_client_for(tenant_a.teacher.user).post(
        f"/t/alpha/teach/courses/{tenant_a.course.id}/mastery/refit/"
    )
    assert refit.status_code == 302

    def fitted():
        with scopes_disabled():
            return SkillParams.objects.filter(skill=tenant_a.skill, fitted_at__isnull=False).first()

    params = wait_for(fitted, timeout=60, message="the refit task to store the parameters")
    assert (params.learners, params.observations) == (1, 1)
    with scopes_disabled():
        mastery = Mastery.objects.get(user=learner, skill=tenant_a.skill)
    expected = bkt.update(
        params.prior, True, learn=params.learn, slip=params.slip, guess=params.guess
    )
    assert mastery.probability == pytest.approx(expected, abs=1e-9)
