"""Reads of tenants, memberships and invitations."""

import hashlib

from django.db.models import QuerySet
from django_scopes import scopes_disabled

from apps.tenants.models import Invitation, Membership, Role, Tenant


def token_digest(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


def tenant_get(*, slug: str) -> Tenant | None:
    return Tenant.objects.filter(slug=slug).first()


def tenant_list_for_user(*, user) -> QuerySet[Tenant]:
    """Tenants the user may open: all of them for a platform administrator."""
    if user.is_staff:
        return Tenant.objects.all()
    return Tenant.objects.filter(memberships__user=user).distinct()


def membership_get(*, user, tenant: Tenant) -> Membership | None:
    if not user.is_authenticated:
        return None
    # Deliberately across the scope: this is the check that decides the scope is allowed.
    with scopes_disabled():
        return Membership.objects.filter(user=user, tenant=tenant).first()


def role_get(*, user, tenant: Tenant) -> Role | None:
    """The role the user acts in within the tenant; platform administrators act as admins."""
    membership = membership_get(user=user, tenant=tenant)
    if membership is not None:
        return Role(membership.role)
    if user.is_authenticated and user.is_staff:
        return Role.ADMIN
    return None


def membership_list_for_user(*, user) -> list[Membership]:
    # A user's own memberships span tenants; this is the one cross-tenant read, of their own rows.
    with scopes_disabled():
        return list(
            Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__name")
        )


def membership_list(*, tenant: Tenant) -> QuerySet[Membership]:
    return Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__email")


def invitation_list(*, tenant: Tenant) -> QuerySet[Invitation]:
    return (
        Invitation.objects.filter(tenant=tenant, accepted_at__isnull=True)
        .select_related("invited_by")
        .order_by("-created_at")
    )


def invitation_get_by_token(*, raw_token: str) -> Invitation | None:
    """The pending invitation behind a link, in any tenant (the token is the secret)."""
    with scopes_disabled():
        return (
            Invitation.objects.filter(
                token_digest=token_digest(raw_token), accepted_at__isnull=True
            )
            .select_related("tenant")
            .first()
        )
