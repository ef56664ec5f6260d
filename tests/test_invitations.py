"""Invitations: an admin invites an address, the invitee follows the mailed link, sets a
password and joins in the invited role. Bad, used or expired links change nothing."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from django_scopes import scopes_disabled

from apps.accounts.models import User
from apps.tenants.models import Invitation, Membership, Role
from tests.conftest import api_client_for, page_client_for
from tests.factories import PASSWORD, InvitationFactory, UserFactory
from tests.snapshots import db_snapshot

pytestmark = pytest.mark.calendar  # windows, periods, expiries: relative to today

NEW_PASSWORD = "a long and unusual passphrase 42"


def _link_from_mail() -> str:
    assert len(mail.outbox) == 1
    match = re.search(r"http://testserver(/invite/[\w-]+/)", mail.outbox[0].body)
    assert match, mail.outbox[0].body
    return match.group(1)


@pytest.mark.django_db(transaction=True)
def test_an_invitee_joins_through_the_mailed_link(tenant_a):
    admin = page_client_for(tenant_a.admin.user)
    response = admin.post(
        f"/t/{tenant_a.tenant.slug}/members/invite/",
        {"email": "New.Teacher@Example.org", "role": "teacher"},
    )
    assert response.status_code == 302
    assert mail.outbox[0].to == ["new.teacher@example.org"]
    assert mail.outbox[0].subject == "You are invited to School ALPHA on Aula"
    link = _link_from_mail()

    invitee = Client()
    page = invitee.get(link)
    assert page.status_code == 200
    assert b"You are invited as <strong>teacher</strong>" in page.content
    response = invitee.post(link, {"full_name": "Grace H", "password": NEW_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == f"/t/{tenant_a.tenant.slug}/"
    assert invitee.get(response["Location"]).status_code == 200

    user = User.objects.get(email="new.teacher@example.org")
    assert user.check_password(NEW_PASSWORD)
    assert user.full_name == "Grace H"
    with scopes_disabled():
        membership = Membership.objects.get(user=user)
        assert (membership.tenant_id, membership.role) == (tenant_a.tenant.id, Role.TEACHER)
        invitation = Invitation.objects.get(email="new.teacher@example.org")
        assert invitation.accepted_by == user
    # The link works once.
    assert invitee.get(link).status_code == 404


@pytest.mark.django_db
def test_a_weak_password_is_refused_and_nothing_is_created(tenant_a):
    before = db_snapshot()
    response = Client().post(f"/invite/{tenant_a.invitation_token}/", {"password": "123"})
    assert response.status_code == 200
    assert b"This password is too short" in response.content
    assert db_snapshot() == before


@pytest.mark.django_db
def test_unknown_and_expired_links_answer_404_and_change_nothing(tenant_a):
    expired = InvitationFactory(
        tenant=tenant_a.tenant,
        raw_token="expired-token-0123456789",
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert expired.pk
    before = db_snapshot()
    for token in ("no-such-token", "expired-token-0123456789"):
        response = Client().post(f"/invite/{token}/", {"password": NEW_PASSWORD})
        assert response.status_code == 404
        assert b"This invitation link is invalid, used or expired." in response.content
        api = api_client_for(None).post(
            "/api/v1/invitations/accept/",
            {"token": token, "password": NEW_PASSWORD},
            format="json",
        )
        assert api.status_code == 400
        assert api.json()["error"]["fields"] == {
            "token": ["This invitation link is invalid, used or expired."]
        }
    assert db_snapshot() == before


@pytest.mark.django_db
def test_an_existing_account_must_log_in_to_accept(tenant_a, tenant_b):
    person = UserFactory(email="both@example.org")
    InvitationFactory(
        tenant=tenant_a.tenant, email="both@example.org", raw_token="existing-0123456789"
    )
    someone_else = api_client_for(tenant_b.admin.user)
    before = db_snapshot()
    response = api_client_for(None).post(
        "/api/v1/invitations/accept/",
        {"token": "existing-0123456789", "password": "whatever1"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "password": ["An account with this email exists; log in first, then accept."]
    }
    # Logged in as someone else: refused too.
    other = someone_else.post(
        "/api/v1/invitations/accept/", {"token": "existing-0123456789"}, format="json"
    )
    assert other.status_code == 400
    assert db_snapshot() == before

    response = api_client_for(person).post(
        "/api/v1/invitations/accept/", {"token": "existing-0123456789"}, format="json"
    )
    assert response.status_code == 201
    assert response.json() == {"tenant_slug": "alpha", "role": "learner"}
    assert person.check_password(PASSWORD)


@pytest.mark.django_db
def test_the_invitation_api_lists_reissues_and_revokes(
    tenant_a, django_capture_on_commit_callbacks
):
    client = api_client_for(tenant_a.admin.user)
    url = f"/api/v1/t/{tenant_a.tenant.slug}/invitations/"
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(url, {"email": "x@example.org", "role": "learner"}, format="json")
    assert first.status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(url, {"email": "x@example.org", "role": "teacher"}, format="json")
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]  # the pending one, with a fresh link
    assert len(mail.outbox) == 2
    listing = client.get(url).json()
    assert listing["count"] == 2
    assert {(i["email"], i["role"]) for i in listing["results"]} == {
        ("x@example.org", "teacher"),
        (tenant_a.invitation.email, "learner"),
    }
    member = client.post(
        url, {"email": tenant_a.learner.user.email, "role": "learner"}, format="json"
    )
    assert member.status_code == 400
    assert member.json()["error"]["fields"] == {
        "email": [f"{tenant_a.learner.user.email} is already a member of School ALPHA."]
    }
    assert client.delete(f"{url}{first.json()['id']}/").status_code == 204
    assert client.get(url).json()["count"] == 1


@pytest.mark.django_db
def test_the_members_page_paginates(tenant_a, monkeypatch):
    from apps.tenants import views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    html = page_client_for(tenant_a.admin.user).get("/t/alpha/members/?page=2").content.decode()
    assert "Page 2 of 2" in html  # admin, teacher, learner: three members, two a page
    assert 'href="?page=1" rel="prev"' in html
