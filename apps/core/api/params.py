"""Query parameters read strictly: a value the schema does not allow is a 400 that names it,
never silently replaced by a default."""

from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError


def whole_number_param(request, name: str, *, default: int, minimum: int, maximum: int) -> int:
    """?name=N as an int in [minimum, maximum]; `default` when the parameter is absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    # ASCII digits only: isdigit() alone takes "²", which int() refuses.
    if raw.isascii() and raw.isdigit() and len(raw) <= len(str(maximum)):
        value = int(raw)
        if minimum <= value <= maximum:
            return value
    message = _("A whole number from %(minimum)d to %(maximum)d.") % {
        "minimum": minimum,
        "maximum": maximum,
    }
    raise ValidationError({name: [message]})


def whole_number_schema(*, minimum: int, maximum: int) -> dict:
    """The OpenAPI schema of a whole_number_param."""
    return {"type": "integer", "minimum": minimum, "maximum": maximum}
