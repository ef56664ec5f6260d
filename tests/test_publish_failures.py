"""A Redis outage never turns a committed change into a 500: every write that publishes a
realtime event (after its commit, through apps.core.realtime.publish) answers what it committed
when the channel layer is down, and the failure is logged."""

import pytest
from django_scopes import scope, scopes_disabled

from apps.jobs.models import Job
from apps.jobs.services import submission_create
from apps.tenants.models import Membership, Role
from runtime.templates import TEMPLATES
from tests.conftest import api_client_for, free_port
from tests.factories import EnrollmentFactory, MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)  # the publish runs after a real commit


@pytest.fixture
def layer_down(settings) -> str:
    """The channel layer points at a port where nothing listens (the cache stays up: the
    throttles read it); the stopped Redis's URL."""
    layer = settings.CHANNEL_LAYERS["default"]
    stopped = f"redis://127.0.0.1:{free_port()}/0"
    settings.CHANNEL_LAYERS = {
        "default": {**layer, "CONFIG": {**layer["CONFIG"], "hosts": [{"address": stopped}]}}
    }
    return stopped


def _client(user):
    client = api_client_for(user)
    client.raise_request_exception = False  # a 500 must show as one, not as a test error
    return client


def _failures(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "apps.core.realtime"]


def test_with_redis_stopped_a_role_change_answers_200_and_is_kept(
    tenant_a, settings, layer_down, caplog
):
    """Redis stopped, for this process: the channel layer and the cache point at a port where
    nothing listens."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": layer_down}}
    response = _client(tenant_a.admin.user).patch(
        f"/api/v1/t/alpha/members/{tenant_a.learner.id}/", {"role": "teacher"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["role"] == "teacher"
    with scopes_disabled():
        assert Membership.objects.get(pk=tenant_a.learner.id).role == Role.TEACHER
    assert _failures(caplog) == [
        f"could not publish tenant.event to tenant.{tenant_a.tenant.id.hex}"
        f".user.{tenant_a.learner.user.id.hex}"
    ]


def test_accepting_an_invitation_answers_201_and_the_member_is_kept(tenant_a, layer_down, caplog):
    response = _client(None).post(
        "/api/v1/invitations/accept/",
        {"token": tenant_a.invitation_token, "password": "a long passphrase 1234"},
        format="json",
    )
    assert (response.status_code, response.json()) == (
        201,
        {"tenant_slug": "alpha", "role": "learner"},
    )
    with scopes_disabled():
        member = Membership.objects.get(
            tenant=tenant_a.tenant, user__email=tenant_a.invitation.email
        )
    assert member.role == Role.LEARNER
    assert _failures(caplog) == [
        f"could not publish tenant.event to tenant.{tenant_a.tenant.id.hex}.admins"
    ]


def test_cancelling_a_job_answers_200_and_the_job_is_cancelled(tenant_a, layer_down, caplog):
    learner = MembershipFactory(tenant=tenant_a.tenant).user
    EnrollmentFactory(course=tenant_a.course, user=learner)
    with scope(tenant=tenant_a.tenant.id):
        job = submission_create(
            assignment=tenant_a.assignment, learner=learner, kind="spec", spec=TEMPLATES["xor"].spec
        ).job
    caplog.clear()
    response = _client(learner).post(f"/api/v1/t/alpha/jobs/{job.id}/cancel/")
    assert (response.status_code, response.json()["state"]) == (200, "cancelled")
    with scopes_disabled():
        assert Job.objects.get(pk=job.id).state == "cancelled"
    group = f"tenant.{tenant_a.tenant.id.hex}.job.{job.id.hex}"
    assert _failures(caplog) == [f"could not publish job.event to {group}"]
