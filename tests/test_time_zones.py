"""Each user's time zone: chosen on the preferences page, activated for their requests, so
datetime-local inputs are read in it and pages show dates in it (named)."""

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from django_scopes import scopes_disabled

from apps.accounts.models import User
from apps.courses.models import Assignment
from tests.conftest import page_client_for
from tests.snapshots import db_snapshot

pytestmark = pytest.mark.django_db
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")  # UTC+8 all year


def _set_zone(user, name: str) -> None:
    User.objects.filter(pk=user.pk).update(time_zone=name)


def test_a_teacher_in_shanghai_enters_nine_oclock_and_it_is_stored_as_one_utc(tenant_a):
    _set_zone(tenant_a.teacher.user, "Asia/Shanghai")
    _set_zone(tenant_a.learner.user, "Asia/Shanghai")
    # Tomorrow and in a week, 09:00 on the teacher's clock.
    today = timezone.now().astimezone(SHANGHAI).date()
    opens_day, due_day = today + timedelta(days=1), today + timedelta(days=8)
    client = page_client_for(tenant_a.teacher.user)
    url = f"/t/alpha/teach/courses/{tenant_a.course.id}/assignments/new/"
    form = client.get(url).content.decode()
    assert "In your time zone, Asia/Shanghai." in form
    response = client.post(
        url,
        {
            "exercise": tenant_a.exercise.id,
            "opens_at": f"{opens_day:%Y-%m-%d}T09:00",
            "due_at": f"{due_day:%Y-%m-%d}T09:00",
            "closes_at": "",
            "max_attempts": "3",
            "late_policy": "refuse",
            "late_penalty": "0",
            "publish": "on",
        },
    )
    assert response.status_code == 302
    with scopes_disabled():
        assignment = Assignment.objects.exclude(pk=tenant_a.assignment.pk).get()
    due_utc = datetime(due_day.year, due_day.month, due_day.day, 1, 0, tzinfo=UTC)
    assert assignment.due_at == due_utc
    assert assignment.opens_at == due_utc - timedelta(days=7)

    edit = client.get(
        f"/t/alpha/teach/courses/{tenant_a.course.id}/assignments/{assignment.id}/"
    ).content.decode()
    assert f'name="due_at" value="{due_day:%Y-%m-%d}T09:00"' in edit

    # The assignment is open tomorrow; its page and the dashboard show the due time in the
    # learner's zone, named. The same moment reads 01:00 UTC to someone who chose no zone.
    with scopes_disabled():
        Assignment.objects.filter(pk=assignment.pk).update(
            opens_at=timezone.now() - timedelta(hours=1)
        )
    learner = page_client_for(tenant_a.learner.user)
    page = learner.get(f"/t/alpha/assignments/{assignment.id}/").content.decode()
    assert f"{due_day:%Y-%m-%d} 09:00 Asia/Shanghai</time>" in page
    for shown_on in ("/t/alpha/", f"/t/alpha/courses/{tenant_a.course.id}/"):
        html = learner.get(shown_on).content.decode()
        assert f"{due_day:%Y-%m-%d} 09:00 Asia/Shanghai</time>" in html, shown_on
    _set_zone(tenant_a.learner.user, "")
    page = learner.get(f"/t/alpha/assignments/{assignment.id}/").content.decode()
    assert f"{due_day:%Y-%m-%d} 01:00 UTC</time>" in page


def test_the_preferences_page_sets_the_time_zone(tenant_a):
    user = tenant_a.learner.user
    client = page_client_for(user)
    page = client.get("/accounts/preferences/")
    assert page.status_code == 200
    assert '<option value="" selected>UTC (not chosen yet)</option>' in page.content.decode()
    response = client.post("/accounts/preferences/", {"time_zone": "Asia/Shanghai"}, follow=True)
    assert response.redirect_chain == [("/accounts/preferences/", 302)]
    assert "Your preferences are saved: times are in Asia/Shanghai." in response.content.decode()
    assert User.objects.get(pk=user.pk).time_zone == "Asia/Shanghai"
    assert '<option value="Asia/Shanghai" selected>' in response.content.decode()


def test_an_unknown_time_zone_is_refused_on_its_field_and_nothing_changes(tenant_a):
    client = page_client_for(tenant_a.learner.user)
    before = db_snapshot()
    response = client.post("/accounts/preferences/", {"time_zone": "Mars/Olympus_Mons"})
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "time_zone": [
            "Select a valid choice. Mars/Olympus_Mons is not one of the available choices."
        ]
    }
    assert db_snapshot() == before


def test_anonymous_visitors_are_sent_to_log_in_from_the_preferences():
    response = page_client_for(None).get("/accounts/preferences/")
    assert (response.status_code, response["Location"]) == (
        302,
        "/accounts/login/?next=/accounts/preferences/",
    )


def test_the_api_answers_in_utc_whatever_the_callers_time_zone(tenant_a):
    _set_zone(tenant_a.learner.user, "Asia/Shanghai")
    # A session, as the pages' scripts call the API: the user is known before the view runs.
    rows = page_client_for(tenant_a.learner.user).get("/api/v1/t/alpha/me/assignments/").json()
    due = tenant_a.assignment.due_at.astimezone(UTC)
    assert [row["due_at"] for row in rows["results"]] == [due.isoformat().replace("+00:00", "Z")]
