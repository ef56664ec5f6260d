"""The API's one error shape: {"error": {"code", "message", "fields"}} for every failure."""

from collections.abc import Callable

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.exceptions import Conflict


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def error_response(status_code: int, code: str, message: str, fields: dict | None = None):
    """A plain Django JsonResponse in the API's error shape (for middleware and handlers)."""
    return JsonResponse(error_body(code, message, fields), status=status_code)


# Service exception -> the API exception that answers it (registered with `answers`).
_ANSWERS: dict[type[Exception], Callable[[str], exceptions.APIException]] = {}


def answers(*service_exceptions: type[Exception]):
    """Class decorator for an APIException: the exception handler answers each of
    `service_exceptions` (raised by a service, uncaught by the view) with it, made from the
    service error's message. Views list it in `raises` for the schema; they catch nothing."""

    def register(api_exception):
        for service_exception in service_exceptions:
            _ANSWERS[service_exception] = api_exception
        return api_exception

    return register


@answers(Conflict)
class ConflictError(exceptions.APIException):
    """The object's state refuses the request."""

    status_code = 409
    default_code = "conflict"
    default_detail = "The object's state refuses the request."


def _validation_error_from(exc: DjangoValidationError) -> exceptions.ValidationError:
    """A Django ValidationError (from a service) as DRF's, keeping the field names; errors not
    about one field ("__all__") are named non_field_errors."""
    if not hasattr(exc, "error_dict"):
        return exceptions.ValidationError({"non_field_errors": exc.messages})
    return exceptions.ValidationError(
        {
            ("non_field_errors" if field == NON_FIELD_ERRORS else field): messages
            for field, messages in exc.message_dict.items()
        }
    )


def _api_exception_for(exc, context):
    """The exception the API answers for `exc`: Django's and the services' become DRF's."""
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, DjangoValidationError):
        return _validation_error_from(exc)
    answer = next((_ANSWERS[k] for k in type(exc).__mro__ if k in _ANSWERS), None)
    if answer is None:
        return exc
    api_exc = answer(str(exc))
    view, request = context.get("view"), context.get("request")
    if isinstance(api_exc, exceptions.AuthenticationFailed) and view is not None:
        # What APIView.handle_exception does for an AuthenticationFailed raised in the view.
        header = view.get_authenticate_header(request)
        if header:
            api_exc.auth_header = header
        else:
            api_exc.status_code = 403
    return api_exc


def _flatten(detail) -> str | list | dict:
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten(item) for item in detail]
    return str(detail)


def exception_handler(exc, context):
    exc = _api_exception_for(exc, context)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's 500 handler answers in the same shape

    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            fields = _flatten(detail)
        else:
            fields = {
                "non_field_errors": _flatten(detail if isinstance(detail, list) else [detail])
            }
        body = error_body("invalid", "The request has invalid fields; see error.fields.", fields)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = getattr(exc, "default_code", "error")
        if isinstance(detail, dict | list):
            body = error_body(code, str(exc.default_detail), {"detail": _flatten(detail)})
        else:
            body = error_body(getattr(detail, "code", None) or code, str(detail))
    return Response(body, status=response.status_code, headers=_copy_headers(response))


def _copy_headers(response) -> dict:
    return {
        name: response[name]
        for name in ("WWW-Authenticate", "Retry-After", "Allow")
        if response.has_header(name)
    }
