"""The base API view: input declared per HTTP method, and no body accepted where none is read."""

from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.views import APIView


class ApiView(APIView):
    """Declare `input_serializers = {"post": SomeInputSerializer}`; read with `validated_input`.

    A method with no declared input still parses a body it is sent (malformed JSON is a 400)
    and refuses a non-empty one, so no endpoint silently ignores what a client meant.
    """

    input_serializers: dict[str, type[serializers.Serializer]] = {}

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication, permissions, throttles
        method = request.method.lower()
        if method in self.input_serializers:
            return
        if int(request.META.get("CONTENT_LENGTH") or 0) > 0 and request.data:
            raise ValidationError({"non_field_errors": ["This endpoint takes no request body."]})

    def validated_input(self, request) -> dict:
        serializer = self.input_serializers[request.method.lower()](data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data
