"""Every page the URL map has, as each role sees it, renders without template source showing:
no Django comment delimiters (a multi-line `{# #}` is not a comment, it prints as text)."""

import pytest

from tests.conftest import page_client_for
from tests.urlmap import all_routes, example_values

PAGE_ROUTES = [r for r in all_routes() if not r.is_api]


@pytest.mark.django_db
def test_no_page_shows_template_comment_delimiters(tenant_a, platform_admin):
    # The invitation page takes the invitation's raw token.
    values = {**example_values(tenant_a), "token": tenant_a.invitation_token}
    users = {
        "anonymous": None,
        "learner": tenant_a.learner.user,
        "teacher": tenant_a.teacher.user,
        "admin": tenant_a.admin.user,
        "platform admin": platform_admin,
    }
    rendered = []
    for role, user in users.items():
        client = page_client_for(user)
        for route in PAGE_ROUTES:
            url = route.build(values)
            response = client.get(url)
            if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
                continue
            html = response.content.decode()
            rendered.append((role, url))
            assert "{#" not in html and "#}" not in html, (role, url)
    # The walk reached the pages that include the form and the pager.
    assert ("admin", f"/t/{tenant_a.tenant.slug}/members/") in rendered
    assert ("teacher", f"/t/{tenant_a.tenant.slug}/teach/skills/") in rendered
    assert ("platform admin", "/console/tenants/new/") in rendered
    assert len({url for _, url in rendered}) >= 25
