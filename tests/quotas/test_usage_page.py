"""The tenant administrators' usage page (the quota, this period's GPU time by course, by learner
and per day, the jobs in flight with cancel) and the job cancel page action. Other roles and
other tenants get 404, and nothing changes."""

import json
import re

import pytest
from django.utils import timezone
from django_scopes import scopes_disabled

from apps.jobs import usage_views
from apps.jobs.models import Job
from tests.conftest import page_client_for
from tests.console.support import job_in
from tests.factories import MembershipFactory, UserFactory
from tests.snapshots import db_snapshot

pytestmark = pytest.mark.django_db


def test_an_admin_sees_the_quota_the_usage_and_the_chart_data(tenant_a):
    waiting = job_in(tenant_a, state="queued")
    response = page_client_for(tenant_a.admin.user).get("/t/alpha/usage/")
    assert response.status_code == 200
    html = response.content.decode()
    # The fixtures' quota: an hour a month; the graded job reserved 60 s and was charged 2.5 s.
    assert '<dd id="quota-total">1 h</dd>' in html
    assert '<dd id="quota-used">2.5 s</dd>' in html
    assert '<dd id="quota-reserved">0 s</dd>' in html
    assert '<dd id="quota-left">59 min 57 s</dd>' in html
    assert "2 jobs running at once, 100 waiting" in html
    assert "<li>Worker pools: gpu</li>" in html
    course, learner = tenant_a.course.title, tenant_a.learner.user
    assert f"<tr><td>{course}</td><td>1</td><td>2.5 s</td><td>0 s</td></tr>" in html
    assert f'{learner.full_name} <span class="muted">{learner.email}</span>' in html
    # One day per day of the period so far, today's holding the charge.
    embedded = re.search(r'<script id="usage-data" type="application/json">(.*?)</script>', html)
    chart = json.loads(embedded.group(1))
    today = timezone.now().date()
    assert chart["days"][-1] == today.isoformat()
    assert len(chart["days"]) == today.day  # a month's period starts on the 1st
    assert chart["used"] == [0.0] * (today.day - 1) + [2.5]
    # The waiting job, with a cancel button that comes back here.
    assert f'action="/t/alpha/jobs/{waiting.id}/cancel/"' in html
    assert '<input type="hidden" name="next" value="/t/alpha/usage/">' in html


def test_long_lists_of_learners_and_jobs_are_paginated(tenant_a, monkeypatch):
    monkeypatch.setattr(usage_views, "PAGE_SIZE", 2)
    for attempt in range(2, 7):
        job_in(tenant_a, state="queued", attempt=attempt)
    client = page_client_for(tenant_a.admin.user)
    first = client.get("/t/alpha/usage/").context["jobs"]
    last = client.get("/t/alpha/usage/?jobs=3").context["jobs"]
    assert (first.paginator.count, len(first.object_list), len(last.object_list)) == (5, 2, 1)
    with scopes_disabled():
        oldest = list(Job.objects.filter(state="queued").order_by("created_at", "id"))
    assert list(first.object_list) == oldest[:2]
    assert list(last.object_list) == oldest[4:]
    html = client.get("/t/alpha/usage/?jobs=2").content.decode()
    assert 'href="?jobs=1" rel="prev"' in html and 'href="?jobs=3" rel="next"' in html


@pytest.mark.parametrize("role", ["teacher", "learner"])
def test_teachers_and_learners_get_404(tenant_a, role):
    client = page_client_for(getattr(tenant_a, role).user)
    assert client.get("/t/alpha/usage/").status_code == 404


def test_another_tenants_admin_gets_404(tenant_a, tenant_b):
    assert page_client_for(tenant_b.admin.user).get("/t/alpha/usage/").status_code == 404


def test_an_admin_cancels_a_waiting_job_from_the_page(tenant_a):
    job = job_in(tenant_a, state="queued")
    client = page_client_for(tenant_a.admin.user)
    response = client.post(
        f"/t/alpha/jobs/{job.id}/cancel/", {"next": "/t/alpha/usage/", "confirm": "yes"}
    )
    assert (response.status_code, response["Location"]) == (302, "/t/alpha/usage/")
    with scopes_disabled():
        job.refresh_from_db()
    assert (job.state, job.cancel_requested_by) == ("cancelled", tenant_a.admin.user)
    assert "Cancel requested." in client.get("/t/alpha/usage/").content.decode()


def test_a_learner_cancels_their_own_running_job(tenant_a):
    job = job_in(tenant_a, state="running", owner="celery@gpu-1:1")
    response = page_client_for(tenant_a.learner.user).post(
        f"/t/alpha/jobs/{job.id}/cancel/", {"confirm": "yes"}
    )
    # Without a `next`, back to the tenant's home.
    assert (response.status_code, response["Location"]) == (302, "/t/alpha/")
    with scopes_disabled():
        job.refresh_from_db()
    assert (job.state, job.cancel_requested_by) == ("running", tenant_a.learner.user)


def test_a_next_on_another_site_is_not_followed(tenant_a):
    job = job_in(tenant_a, state="queued")
    response = page_client_for(tenant_a.admin.user).post(
        f"/t/alpha/jobs/{job.id}/cancel/", {"next": "https://evil.example/", "confirm": "yes"}
    )
    assert (response.status_code, response["Location"]) == (302, "/t/alpha/")


def test_cancelling_an_ended_job_says_so_and_changes_nothing(tenant_a):
    client = page_client_for(tenant_a.admin.user)
    before = db_snapshot()
    response = client.post(
        f"/t/alpha/jobs/{tenant_a.job.id}/cancel/", {"confirm": "yes"}, follow=True
    )
    assert response.status_code == 200
    assert "This job has already ended (succeeded)." in response.content.decode()
    assert db_snapshot() == before


def test_cancel_without_confirmation_asks_and_changes_nothing(tenant_a):
    job = job_in(tenant_a, state="queued")
    client = page_client_for(tenant_a.admin.user)
    before = db_snapshot()  # after the login
    response = client.post(f"/t/alpha/jobs/{job.id}/cancel/", {"next": "/t/alpha/usage/"})
    assert response.status_code == 200
    html = response.content.decode()
    assert '<h1 id="confirm-heading">Cancel this run?</h1>' in html
    assert f'<form method="post" action="/t/alpha/jobs/{job.id}/cancel/" id="confirm-form">' in html
    assert '<input type="hidden" name="confirm" value="yes">' in html
    assert '<input type="hidden" name="next" value="/t/alpha/usage/">' in html
    assert '<a href="/t/alpha/usage/">No, go back</a>' in html
    assert db_snapshot() == before
    with scopes_disabled():
        job.refresh_from_db()
    assert (job.state, job.cancel_requested_by) == ("queued", None)


def test_who_may_not_follow_the_job_gets_404_and_nothing_changes(tenant_a, tenant_b):
    job = job_in(tenant_a, state="queued")
    classmate = MembershipFactory(tenant=tenant_a.tenant, role="learner").user
    clients = [page_client_for(user) for user in (classmate, tenant_b.admin.user, UserFactory())]
    admin = page_client_for(tenant_a.admin.user)
    before = db_snapshot()  # after the logins, which stamp last_login
    for client in clients:
        assert client.post(f"/t/alpha/jobs/{job.id}/cancel/").status_code == 404
    unknown = "/t/alpha/jobs/00000000-0000-0000-0000-000000000000/cancel/"
    assert admin.post(unknown).status_code == 404
    assert admin.get(f"/t/alpha/jobs/{job.id}/cancel/").status_code == 405
    assert db_snapshot() == before
