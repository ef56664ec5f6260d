"""The API's one exception handler answers service errors; views catch none."""

import pytest
from django.core.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.test import APIRequestFactory

from apps.accounts.services import LoginFailed
from apps.core.api.views import ApiView
from apps.core.exceptions import Conflict


def _answer(error: Exception):
    class Raising(ApiView):
        authentication_classes = []
        permission_classes = [AllowAny]

        def get(self, request):
            raise error

    response = Raising.as_view()(APIRequestFactory().get("/api/v1/raising/"))
    return response.status_code, response.data, response.get("WWW-Authenticate")


@pytest.mark.parametrize(
    ("error", "fields"),
    [
        (ValidationError({"role": "Not a role."}), {"role": ["Not a role."]}),
        (ValidationError({"__all__": ["Both at once."]}), {"non_field_errors": ["Both at once."]}),
        (ValidationError(["One.", "Two."]), {"non_field_errors": ["One.", "Two."]}),
    ],
)
def test_a_services_validation_error_is_a_400_naming_its_fields(error, fields):
    message = "The request has invalid fields; see error.fields."
    assert _answer(error) == (
        400,
        {"error": {"code": "invalid", "message": message, "fields": fields}},
        None,
    )


def test_a_conflict_is_a_409_with_its_message():
    assert _answer(Conflict("It has ended.")) == (
        409,
        {"error": {"code": "conflict", "message": "It has ended.", "fields": {}}},
        None,
    )


def test_a_failed_login_is_a_401_that_names_the_view_s_scheme():
    import apps.accounts.apis  # noqa: F401 (registers LoginRefused, as the URLconf does)

    class TokenView(ApiView):
        authentication_classes = []
        permission_classes = [AllowAny]

        def get_authenticate_header(self, request):
            return "Token"

        def get(self, request):
            raise LoginFailed("Wrong email or password.")

    response = TokenView.as_view()(APIRequestFactory().get("/api/v1/raising/"))
    body = {
        "error": {
            "code": "authentication_failed",
            "message": "Wrong email or password.",
            "fields": {},
        }
    }
    assert (response.status_code, response.data, response["WWW-Authenticate"]) == (
        401,
        body,
        "Token",
    )
