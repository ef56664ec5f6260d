"""The OpenAPI schema generates without a warning, validates, and is served with its docs."""

import pytest
from django.core.management import call_command


def test_the_schema_generates_with_no_warning(tmp_path):
    target = tmp_path / "schema.yml"
    # --fail-on-warn turns any warning into a failure; --validate checks it against OpenAPI 3.
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(target))
    text = target.read_text()
    assert text.startswith("openapi: 3.0.3")
    assert "/api/v1/t/{tenant_slug}/invitations/:" in text


@pytest.mark.django_db
def test_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "Aula API"
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    # The UI's assets are served locally (the sidecar), never from a CDN.
    assert b"/static/drf_spectacular_sidecar/swagger-ui-dist/" in docs.content
