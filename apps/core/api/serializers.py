"""Base serializers for API input: unknown fields are errors, not silently dropped."""

from rest_framework import serializers


class InputSerializer(serializers.Serializer):
    """Rejects fields the endpoint does not know, naming each one."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field; this endpoint does not accept it."] for name in unknown}
                )
        return super().to_internal_value(data)
