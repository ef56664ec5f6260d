"""Account API: log in for a token, revoke it, and who am I."""

from drf_spectacular.utils import extend_schema, inline_serializer
from knox.auth import TokenAuthentication
from rest_framework import serializers, status
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from apps.accounts.lockout import address_throttled, throttled_response
from apps.accounts.services import LoginFailed, token_create, token_revoke
from apps.core.api.errors import answers
from apps.core.api.serializers import InputSerializer
from apps.core.api.views import ApiView
from apps.tenants.selectors import membership_list_for_user


@answers(LoginFailed)
class LoginRefused(AuthenticationFailed):
    """Wrong email or password (401; APIView's own header, or 403 where a view has none)."""


class UserOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    email = serializers.EmailField()
    full_name = serializers.CharField()
    is_platform_admin = serializers.BooleanField(source="is_staff")


class TokenCreateApi(ApiView):
    """Exchange email and password for an API token (send it as `Authorization: Token …`)."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    class TokenCreateInputSerializer(InputSerializer):
        email = serializers.EmailField()
        password = serializers.CharField(max_length=4096, trim_whitespace=False)

    class TokenCreateOutputSerializer(serializers.Serializer):
        token = serializers.CharField()
        expiry = serializers.DateTimeField(allow_null=True)
        user = UserOutputSerializer()

    input_serializers = {"post": TokenCreateInputSerializer}

    def get_authenticate_header(self, request):
        return "Token"  # wrong credentials answer 401, as for a bad token

    @extend_schema(
        request=TokenCreateInputSerializer, responses={201: TokenCreateOutputSerializer}, auth=[]
    )
    def post(self, request):
        if address_throttled(request._request):
            return throttled_response(request._request)
        instance, raw = token_create(request=request._request, **self.validated_input(request))
        body = {"token": raw, "expiry": instance.expiry, "user": instance.user}
        return Response(self.TokenCreateOutputSerializer(body).data, status=status.HTTP_201_CREATED)


class TokenRevokeApi(ApiView):
    """Revoke the token this request is made with."""

    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        token_revoke(token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(ApiView):
    """The logged-in user and the tenants they belong to."""

    @extend_schema(
        responses=inline_serializer(
            "Me",
            {
                "user": UserOutputSerializer(),
                "memberships": inline_serializer(
                    "MyMembership",
                    {
                        "tenant_slug": serializers.CharField(),
                        "tenant_name": serializers.CharField(),
                        "role": serializers.CharField(),
                    },
                    many=True,
                ),
            },
        )
    )
    def get(self, request):
        memberships = [
            {"tenant_slug": m.tenant.slug, "tenant_name": m.tenant.name, "role": m.role}
            for m in membership_list_for_user(user=request.user)
        ]
        return Response(
            {"user": UserOutputSerializer(request.user).data, "memberships": memberships}
        )
