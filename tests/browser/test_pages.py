"""The foundation's pages in a real browser: logging in and out, a wrong password, inviting
someone who then joins, the login form by keyboard alone, and a page a role may not see."""

import re
from urllib.parse import urlsplit

import pytest
from django.core import mail
from playwright.sync_api import Page, expect

from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

NEW_PASSWORD = "violet tractors hum beneath 7 quiet moons"


def _url(live_server, path: str) -> re.Pattern:
    """The whole address of `path` on the live server, query string included."""
    return re.compile("^" + re.escape(live_server.url + path) + "$")


def _log_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")


def test_a_learner_logs_in_and_out(page, live_server, tenant_a):
    _log_in(page, tenant_a.learner.user.email)

    # The home page sends someone with a single tenant straight to it.
    expect(page).to_have_url(_url(live_server, "/t/alpha/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("School ALPHA")
    expect(page.get_by_text("You are here as learner")).to_be_visible()
    expect(page.get_by_role("navigation", name="Account")).to_contain_text(
        tenant_a.learner.user.email
    )
    session = {c["name"]: c for c in page.context.cookies()}["sessionid"]
    assert (session["httpOnly"], session["sameSite"]) == (True, "Lax")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(_url(live_server, "/accounts/login/"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert "sessionid" not in {c["name"] for c in page.context.cookies()}

    page.goto("/t/alpha/")
    expect(page).to_have_url(_url(live_server, "/accounts/login/?next=/t/alpha/"))


def test_a_wrong_password_is_refused(page, live_server, tenant_a):
    _log_in(page, tenant_a.learner.user.email, "not the password")

    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    expect(page).to_have_url(_url(live_server, "/accounts/login/"))
    expect(page.get_by_label("Email")).to_have_value(tenant_a.learner.user.email)
    expect(page.get_by_label("Password")).to_have_value("")
    expect(page.get_by_role("navigation", name="Account")).to_have_text("Log in")
    assert "sessionid" not in {c["name"] for c in page.context.cookies()}

    page.goto("/t/alpha/")
    expect(page).to_have_url(_url(live_server, "/accounts/login/?next=/t/alpha/"))


def test_an_admin_invites_a_teacher_who_joins(page, new_page, live_server, tenant_a):
    email = "grace.teacher@example.org"
    _log_in(page, tenant_a.admin.user.email)
    expect(page).to_have_url(_url(live_server, "/t/alpha/"))
    page.goto("/t/alpha/members/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Members of School ALPHA")

    form = page.locator("form.invite")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Role").select_option(label="Teacher")
    form.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status")).to_have_text(f"Invitation sent to {email}.")
    expect(page).to_have_url(_url(live_server, "/t/alpha/members/"))
    expect(page.locator("ul.invitations")).to_contain_text(f"{email} as teacher")

    # The live server runs in a thread of this process: its mail lands in this outbox.
    assert [m.to for m in mail.outbox] == [[email]]
    link = re.search(r"https?://\S+/invite/[\w-]+/", mail.outbox[-1].body)
    assert link, mail.outbox[-1].body

    invitee = new_page()
    invitee.goto(urlsplit(link.group(0)).path)
    expect(invitee.get_by_role("heading", level=1)).to_have_text("Join School ALPHA")
    expect(invitee.get_by_text("You are invited as teacher")).to_contain_text(email)
    invitee.get_by_label("Your name").fill("Grace Hopper")
    invitee.get_by_label("Choose a password").fill(NEW_PASSWORD)
    invitee.get_by_role("button", name="Join School ALPHA").click()
    expect(invitee).to_have_url(_url(live_server, "/t/alpha/"))
    expect(invitee.get_by_role("status")).to_have_text("Welcome to School ALPHA.")
    expect(invitee.get_by_text("You are here as teacher")).to_be_visible()
    expect(invitee.get_by_role("navigation", name="Account")).to_contain_text(email)

    page.reload()
    row = page.get_by_role("row").filter(has_text=email)
    expect(row).to_contain_text("Grace Hopper")
    role = page.get_by_label(f"Role of {email}")
    expect(role).to_have_value("teacher")
    expect(role.locator("option:checked")).to_have_text("Teacher")
    # The used invitation is no longer pending; the fixture's own one still is.
    expect(page.locator("ul.invitations")).not_to_contain_text(email)
    expect(page.locator("ul.invitations")).to_contain_text(tenant_a.invitation.email)


def test_the_login_form_works_by_keyboard_alone(page, live_server, tenant_a):
    page.goto("/accounts/login/")
    skip = page.get_by_role("link", name="Skip to content")
    brand = page.get_by_role("link", name="Aula")
    log_in_link = page.get_by_role("navigation", name="Account").get_by_role("link", name="Log in")
    email = page.get_by_label("Email")
    password = page.get_by_label("Password")
    submit = page.get_by_role("button", name="Log in")
    expect(email).to_be_focused()  # autofocus

    # Back to the top of the page, then forward through every stop, in order, with Tab.
    for stop in (log_in_link, brand, skip):
        page.keyboard.press("Shift+Tab")
        expect(stop).to_be_focused()
    expect(skip).to_be_in_viewport()  # the skip link shows itself when focused
    for stop in (brand, log_in_link, email):
        page.keyboard.press("Tab")
        expect(stop).to_be_focused()
    page.keyboard.type(tenant_a.learner.user.email)
    page.keyboard.press("Tab")
    expect(password).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    expect(submit).to_be_focused()
    page.keyboard.press("Enter")

    expect(page).to_have_url(_url(live_server, "/t/alpha/"))
    expect(page.get_by_text("You are here as learner")).to_be_visible()


def test_a_learner_gets_not_found_for_the_members_page(
    page, live_server, tenant_a, expected_console_errors
):
    # Chromium logs a document answered 404 as a console error: expected here, and only here.
    expected_console_errors.append(
        re.compile(re.escape(f"{live_server.url}/t/alpha/members/: Failed to load resource"))
    )
    _log_in(page, tenant_a.learner.user.email)
    expect(page).to_have_url(_url(live_server, "/t/alpha/"))
    expect(page.get_by_role("link", name="Members and invitations")).to_have_count(0)

    response = page.goto("/t/alpha/members/")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("404")
    expect(page.get_by_text("Not found.")).to_be_visible()
    expect(page.get_by_text("Members of School ALPHA")).to_have_count(0)
