"""The base API view: input declared per HTTP method, and no body accepted where none is read."""

from rest_framework import serializers
from rest_framework.exceptions import APIException, MethodNotAllowed, ValidationError
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from apps.core.api.pagination import PageNumberPagination


class ApiView(APIView):
    # Declare `input_serializers = {"post": SomeInputSerializer}`; read with `validated_input`.
    # A method with no declared input still parses a body it is sent (malformed JSON is a 400)
    # and refuses a non-empty one, so no endpoint silently ignores what a client meant.
    # Comments, not a docstring: drf-spectacular would give a docstring to every operation of
    # every subclass without one as its description in /api/docs/.

    input_serializers: dict[str, type[serializers.Serializer]] = {}
    # Errors a method raises beyond those every endpoint can answer, for the schema
    # (apps/core/api/schema.py): {"post": [SomeApiException]}.
    raises: dict[str, list[type[APIException]]] = {}

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication, permissions, throttles
        method = request.method.lower()
        if method in self.input_serializers:
            return
        if int(request.META.get("CONTENT_LENGTH") or 0) > 0 and request.data:
            raise ValidationError({"non_field_errors": ["This endpoint takes no request body."]})

    def check_permissions(self, request):
        if self._handles(request.method):
            return super().check_permissions(request)
        # A method the endpoint lacks is a 405 (with the Allow header), not a role's 403 that
        # hides what is wrong. The default permissions still answer first: 401 to the
        # unauthenticated, 404 to outsiders of the tenant (who must not learn that it exists).
        defaults = tuple(api_settings.DEFAULT_PERMISSION_CLASSES)
        for permission in self.get_permissions():
            if isinstance(permission, defaults) and not permission.has_permission(request, self):
                self.permission_denied(request, message=getattr(permission, "message", None))
        raise MethodNotAllowed(request.method)

    def _handles(self, method: str) -> bool:
        name = method.lower()
        return name in self.http_method_names and hasattr(self, name)

    def validated_input(self, request) -> dict:
        """The body, validated by the method's serializer; for PATCH every field is optional."""
        serializer_class = self.input_serializers[request.method.lower()]
        serializer = serializer_class(data=request.data, partial=request.method == "PATCH")
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def paginated(self, request, queryset, serializer_class, context=None):
        """One page of `queryset` in the paginated envelope (set `pagination_class` on the view
        so that the schema documents the envelope)."""
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        data = serializer_class(page, many=True, context=context or {}).data
        return paginator.get_paginated_response(data)
