"""Base serializers for API input: unknown fields are errors, not silently dropped, and a JSON
body's values have the JSON types the schema gives them (DRF alone would turn 0 into "0", "12"
into 12 and an integer into a UUID)."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.settings import api_settings

TYPE_MESSAGES = {
    "string": _("Must be a string."),
    "integer": _("Must be a whole number."),
    "number": _("Must be a number."),
    "boolean": _("Must be true or false."),
    "decimal": _('Must be a decimal number written as a string, e.g. "12.50".'),
}


def _json_type(field) -> tuple[str, tuple[type, ...]] | None:
    """The JSON type a field's value must have, and the Python types of it; None: any."""
    if isinstance(field, serializers.BooleanField):
        return "boolean", (bool,)
    if isinstance(field, serializers.IntegerField):
        return "integer", (int,)
    if isinstance(field, serializers.FloatField):
        return "number", (int, float)
    if isinstance(field, serializers.DecimalField):
        if not getattr(field, "coerce_to_string", api_settings.COERCE_DECIMAL_TO_STRING):
            return "number", (int, float)
        return "decimal", (str,)
    if isinstance(field, serializers.ChoiceField):
        strings = all(isinstance(choice, str) for choice in field.choices)
        return ("string", (str,)) if strings else None
    if isinstance(
        field,
        serializers.CharField
        | serializers.UUIDField
        | serializers.DateTimeField
        | serializers.DateField,
    ):
        return "string", (str,)
    return None


def _type_problem(field, value) -> str | None:
    if value is None:
        return None  # allow_null decides
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        problems = (_type_problem(field.child, item) for item in value)
        return next((p for p in problems if p), None)
    expected = _json_type(field)
    if expected is None:
        return None
    name, types = expected
    if isinstance(value, bool) and name != "boolean":
        return str(TYPE_MESSAGES[name])  # True is an int to Python, not a number to JSON
    return None if isinstance(value, types) else str(TYPE_MESSAGES[name])


class InputSerializer(serializers.Serializer):
    """Rejects fields the endpoint does not know, naming each one, and values of the wrong JSON
    type (apps/core/api/schema.py documents both: additionalProperties is false)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            problems = {
                name: [str(_("Unknown field; this endpoint does not accept it."))]
                for name in sorted(set(data) - set(self.fields))
            }
            for name, field in self.fields.items():
                problem = self._value_problem(field, data.get(name)) if name in data else None
                if problem:
                    problems[name] = [problem]
            if problems:
                raise serializers.ValidationError(problems)
        return super().to_internal_value(data)

    def _value_problem(self, field, value) -> str | None:
        return _type_problem(field, value)


class QueryInputSerializer(InputSerializer):
    """For query parameters: unknown ones are refused too, but every value is a string."""

    def _value_problem(self, field, value) -> str | None:
        return None
