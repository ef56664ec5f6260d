"""Tenant API: a tenant's own view (/api/v1/t/<slug>/…) and the platform's (/platform/tenants/).

One class per resource path; each HTTP method is one operation with its own serializers.
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from apps.core.api.errors import answers
from apps.core.api.pagination import PageNumberPagination
from apps.core.api.serializers import InputSerializer
from apps.core.api.views import ApiView
from apps.tenants import services
from apps.tenants.models import Invitation, Membership, Role, Tenant
from apps.tenants.permissions import PlatformAdmin, TenantAdmin, TenantTeacher
from apps.tenants.selectors import invitation_list, membership_list, tenant_list_for_user


@answers(services.InvitationInvalid)
class InvitationTokenRefused(ValidationError):
    """The invitation's token is unknown, used or expired: a 400 on `token`."""

    def __init__(self, message: str):
        super().__init__({"token": [message]})


class TenantOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ["id", "slug", "name", "is_active", "created_at"]


class MembershipOutputSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email")
    full_name = serializers.CharField(source="user.full_name")

    class Meta:
        model = Membership
        fields = ["id", "email", "full_name", "role", "created_at"]


class InvitationOutputSerializer(serializers.ModelSerializer):
    invited_by = serializers.EmailField(source="invited_by.email", allow_null=True)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "invited_by", "expires_at", "created_at"]


# --- A tenant's own API -----------------------------------------------------------------------


class TenantDetailApi(ApiView):
    """The tenant, and the caller's role in it."""

    class TenantDetailOutputSerializer(TenantOutputSerializer):
        role = serializers.SerializerMethodField()

        class Meta(TenantOutputSerializer.Meta):
            fields = [*TenantOutputSerializer.Meta.fields, "role"]

        def get_role(self, tenant) -> str:
            return self.context["role"]

    @extend_schema(responses=TenantDetailOutputSerializer)
    def get(self, request, tenant_slug):
        context = {"role": request.tenant_access.role.value}
        return Response(self.TenantDetailOutputSerializer(request.tenant, context=context).data)


class MemberListApi(ApiView):
    """The tenant's members and their roles."""

    pagination_class = PageNumberPagination
    permission_classes = [*ApiView.permission_classes, TenantTeacher]

    @extend_schema(responses=MembershipOutputSerializer(many=True))
    def get(self, request, tenant_slug):
        members = membership_list(tenant=request.tenant)
        return self.paginated(request, members, MembershipOutputSerializer)


class MemberDetailApi(ApiView):
    """An administrator changes a member's role or removes them from the tenant."""

    permission_classes = [*ApiView.permission_classes, TenantAdmin]

    class MemberUpdateInputSerializer(InputSerializer):
        role = serializers.ChoiceField(choices=Role.choices)

    def _membership(self, request, membership_id) -> Membership:
        return get_object_or_404(membership_list(tenant=request.tenant), pk=membership_id)

    input_serializers = {"patch": MemberUpdateInputSerializer}

    @extend_schema(request=MemberUpdateInputSerializer, responses=MembershipOutputSerializer)
    def patch(self, request, tenant_slug, membership_id):
        membership = self._membership(request, membership_id)
        values = self.validated_input(request)
        if values:  # PATCH {} changes nothing (it used to reach the service without a role)
            services.membership_role_set(actor=request.user, membership=membership, **values)
        return Response(MembershipOutputSerializer(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request, tenant_slug, membership_id):
        membership = self._membership(request, membership_id)
        services.membership_remove(actor=request.user, membership=membership)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationListApi(ApiView):
    """Invitations to join the tenant: administrators list the open ones and invite by
    email, with a role."""

    pagination_class = PageNumberPagination
    permission_classes = [*ApiView.permission_classes, TenantAdmin]

    class InvitationCreateInputSerializer(InputSerializer):
        email = serializers.EmailField()
        role = serializers.ChoiceField(choices=Role.choices)

    input_serializers = {"post": InvitationCreateInputSerializer}

    @extend_schema(responses=InvitationOutputSerializer(many=True))
    def get(self, request, tenant_slug):
        invitations = invitation_list(tenant=request.tenant)
        return self.paginated(request, invitations, InvitationOutputSerializer)

    @extend_schema(
        request=InvitationCreateInputSerializer, responses={201: InvitationOutputSerializer}
    )
    def post(self, request, tenant_slug):
        values = self.validated_input(request)
        issued = services.invitation_create(
            tenant=request.tenant,
            invited_by=request.user,
            base_url=request.build_absolute_uri("/"),
            **values,
        )
        return Response(
            InvitationOutputSerializer(issued.invitation).data, status=status.HTTP_201_CREATED
        )


class InvitationDetailApi(ApiView):
    """An administrator revokes an invitation that was not accepted yet."""

    permission_classes = [*ApiView.permission_classes, TenantAdmin]

    @extend_schema(responses={204: None})
    def delete(self, request, tenant_slug, invitation_id):
        invitation = get_object_or_404(invitation_list(tenant=request.tenant), pk=invitation_id)
        services.invitation_revoke(actor=request.user, invitation=invitation)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationAcceptApi(ApiView):
    """Accept an invitation: a new person sets a password; an existing one is logged in."""

    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "invitation"

    class InvitationAcceptInputSerializer(InputSerializer):
        token = serializers.CharField(max_length=200)
        password = serializers.CharField(
            max_length=4096, required=False, trim_whitespace=False, allow_blank=True
        )
        full_name = serializers.CharField(max_length=150, required=False, allow_blank=True)

    class InvitationAcceptOutputSerializer(serializers.Serializer):
        tenant_slug = serializers.CharField(source="tenant.slug")
        role = serializers.CharField()

    input_serializers = {"post": InvitationAcceptInputSerializer}

    @extend_schema(
        request=InvitationAcceptInputSerializer, responses={201: InvitationAcceptOutputSerializer}
    )
    def post(self, request):
        values = self.validated_input(request)
        membership = services.invitation_accept(
            raw_token=values["token"],
            user=request.user,
            password=values.get("password") or None,
            full_name=values.get("full_name", ""),
        )
        return Response(
            self.InvitationAcceptOutputSerializer(membership).data, status=status.HTTP_201_CREATED
        )


# --- The platform administrators' API --------------------------------------------------------


class PlatformTenantListApi(ApiView):
    """Every tenant, for platform administrators, who create them."""

    pagination_class = PageNumberPagination
    permission_classes = [*ApiView.permission_classes, PlatformAdmin]

    class TenantCreateInputSerializer(InputSerializer):
        slug = serializers.CharField(max_length=50)
        name = serializers.CharField(max_length=200)

    input_serializers = {"post": TenantCreateInputSerializer}

    @extend_schema(responses=TenantOutputSerializer(many=True))
    def get(self, request):
        tenants = tenant_list_for_user(user=request.user).order_by("name")
        return self.paginated(request, tenants, TenantOutputSerializer)

    @extend_schema(request=TenantCreateInputSerializer, responses={201: TenantOutputSerializer})
    def post(self, request):
        values = self.validated_input(request)
        tenant = services.tenant_create(actor=request.user, **values)
        return Response(TenantOutputSerializer(tenant).data, status=status.HTTP_201_CREATED)


class PlatformTenantDetailApi(ApiView):
    """A tenant, for platform administrators: rename, suspend or reactivate it."""

    permission_classes = [*ApiView.permission_classes, PlatformAdmin]

    class TenantUpdateInputSerializer(InputSerializer):
        name = serializers.CharField(max_length=200, required=False)
        is_active = serializers.BooleanField(required=False)

    input_serializers = {"patch": TenantUpdateInputSerializer}

    @extend_schema(responses=TenantOutputSerializer)
    def get(self, request, slug):
        return Response(TenantOutputSerializer(get_object_or_404(Tenant, slug=slug)).data)

    @extend_schema(request=TenantUpdateInputSerializer, responses=TenantOutputSerializer)
    def patch(self, request, slug):
        tenant = get_object_or_404(Tenant, slug=slug)
        values = self.validated_input(request)
        services.tenant_update(actor=request.user, tenant=tenant, **values)
        return Response(TenantOutputSerializer(tenant).data)
