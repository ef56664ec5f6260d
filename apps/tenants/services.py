"""Writes to tenants, memberships and invitations. Each call validates first and writes nothing
when it refuses; realtime events go out only after the transaction commits."""

import secrets
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django_scopes import scope

from apps.audit.services import audit_record
from apps.tenants.events import event_publish, group_for_admins, group_for_user
from apps.tenants.models import Invitation, Membership, Role, Tenant
from apps.tenants.selectors import invitation_get_by_token, token_digest

User = get_user_model()


# --- Tenants ----------------------------------------------------------------------------------


def _tenant_fields(tenant: Tenant) -> dict:
    return {"slug": tenant.slug, "name": tenant.name, "is_active": tenant.is_active}


@transaction.atomic
def tenant_create(*, actor, slug: str, name: str) -> Tenant:
    tenant = Tenant(slug=slug, name=name)
    tenant.full_clean()
    tenant.save()
    audit_record(
        actor=actor,
        action="tenant.create",
        target=tenant,
        before=None,
        after=_tenant_fields(tenant),
    )
    return tenant


@transaction.atomic
def tenant_update(
    *, actor, tenant: Tenant, name: str | None = None, is_active: bool | None = None
) -> Tenant:
    """Rename, suspend or reactivate; audited as tenant.suspend / tenant.reactivate when the
    active flag flips, else tenant.update (nothing is recorded when nothing changes)."""
    before = _tenant_fields(Tenant.objects.select_for_update().get(pk=tenant.pk))
    if name is not None:
        tenant.name = name
    if is_active is not None:
        tenant.is_active = is_active
    tenant.full_clean()
    tenant.save()
    after = _tenant_fields(tenant)
    if after != before:
        action = "tenant.update"
        if before["is_active"] != after["is_active"]:
            action = "tenant.reactivate" if after["is_active"] else "tenant.suspend"
        audit_record(actor=actor, action=action, target=tenant, before=before, after=after)
    return tenant


# --- Memberships ------------------------------------------------------------------------------


def membership_create(*, tenant: Tenant, user, role: str) -> Membership:
    with scope(tenant=tenant):
        membership = Membership(tenant=tenant, user=user, role=role)
        membership.full_clean()
        membership.save()
    return membership


def _lock_admins(tenant: Tenant) -> list[Membership]:
    """Lock the tenant's admin rows (in id order), so two demotions cannot both pass the check."""
    return list(
        Membership.objects.select_for_update().filter(tenant=tenant, role=Role.ADMIN).order_by("id")
    )


def _refuse_last_admin_change(membership: Membership, admins: list[Membership], action: str):
    if membership.role == Role.ADMIN and len(admins) <= 1:
        raise ValidationError(
            {"role": f"This is the tenant's last administrator; {action} would leave none."}
        )


def _membership_fields(membership: Membership) -> dict:
    return {"email": membership.user.email, "role": membership.role}


@transaction.atomic
def membership_role_set(*, actor, membership: Membership, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": f"'{role}' is not a role; use one of {Role.values}."})
    if role != Role.ADMIN:
        _refuse_last_admin_change(membership, _lock_admins(membership.tenant), "the change")
    before = _membership_fields(membership)
    membership.role = role
    membership.full_clean()
    membership.save(update_fields=["role", "updated_at"])
    if before["role"] != role:
        audit_record(
            actor=actor,
            action="membership.role_set",
            target=membership,
            before=before,
            after=_membership_fields(membership),
            tenant=membership.tenant,
        )
    transaction.on_commit(
        partial(
            event_publish,
            group=group_for_user(membership.tenant_id, membership.user_id),
            event_type="membership.role_changed",
            payload={"role": role},
        )
    )
    return membership


@transaction.atomic
def membership_remove(*, actor, membership: Membership) -> None:
    _refuse_last_admin_change(membership, _lock_admins(membership.tenant), "removing them")
    audit_record(
        actor=actor,
        action="membership.remove",
        target=membership,
        before=_membership_fields(membership),
        after=None,
        tenant=membership.tenant,
    )
    membership.delete()


# --- Invitations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    raw_token: str
    url: str


def _invitation_send(issued: IssuedInvitation) -> None:
    invitation = issued.invitation
    context = {"invitation": invitation, "url": issued.url, "tenant": invitation.tenant}
    send_mail(
        subject=f"You are invited to {invitation.tenant.name} on Aula",
        message=render_to_string("tenants/invitation_email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[invitation.email],
    )


def _invitation_fields(invitation: Invitation) -> dict:
    return {"email": invitation.email, "role": invitation.role, "expires_at": invitation.expires_at}


def invitation_create(
    *, tenant: Tenant, email: str, role: str, invited_by, base_url: str
) -> IssuedInvitation:
    """Invite an address (again: a pending invitation gets a fresh link) and mail the link.
    `invited_by` is the actor recorded in the audit log."""
    email = User.objects.normalize_email(email).lower()
    if Membership.objects.filter(tenant=tenant, user__email=email).exists():
        raise ValidationError({"email": f"{email} is already a member of {tenant.name}."})
    raw_token = secrets.token_urlsafe(32)
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .filter(tenant=tenant, email=email, accepted_at__isnull=True)
            .first()
        ) or Invitation(tenant=tenant, email=email)
        before = None if invitation._state.adding else _invitation_fields(invitation)
        invitation.role = role
        invitation.invited_by = invited_by
        invitation.token_digest = token_digest(raw_token)
        invitation.expires_at = timezone.now() + settings.INVITATION_TTL
        invitation.full_clean()
        invitation.save()
        audit_record(
            actor=invited_by,
            action="invitation.create",
            target=invitation,
            before=before,
            after=_invitation_fields(invitation),
            tenant=tenant,
        )
        issued = IssuedInvitation(
            invitation=invitation,
            raw_token=raw_token,
            url=f"{base_url.rstrip('/')}/invite/{raw_token}/",
        )
        transaction.on_commit(partial(_invitation_send, issued))
    return issued


@transaction.atomic
def invitation_revoke(*, actor, invitation: Invitation) -> None:
    audit_record(
        actor=actor,
        action="invitation.revoke",
        target=invitation,
        before=_invitation_fields(invitation),
        after=None,
        tenant=invitation.tenant,
    )
    invitation.delete()


class InvitationInvalid(Exception):
    """The link is unknown, used or expired."""


def invitation_for_token(*, raw_token: str) -> Invitation:
    invitation = invitation_get_by_token(raw_token=raw_token)
    if invitation is None or invitation.expires_at <= timezone.now():
        raise InvitationInvalid("This invitation link is invalid, used or expired.")
    return invitation


@transaction.atomic
def invitation_accept(
    *, raw_token: str, user=None, password: str | None = None, full_name: str = ""
) -> Membership:
    """Join the tenant. A new person sets a password; someone with an account must be logged in
    as the invited address."""
    invitation = invitation_for_token(raw_token=raw_token)
    tenant = invitation.tenant
    with scope(tenant=tenant):
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.accepted_at is not None:
            raise InvitationInvalid("This invitation link is invalid, used or expired.")
        existing = User.objects.filter(email=invitation.email).first()
        if existing is not None:
            if user is None or not user.is_authenticated:
                raise ValidationError(
                    {"password": "An account with this email exists; log in first, then accept."}
                )
            if user.pk != existing.pk:
                raise ValidationError(
                    {
                        "non_field_errors": f"This invitation is for {invitation.email}; "
                        f"you are logged in as {user.email}."
                    }
                )
            member = existing
        else:
            if not password:
                raise ValidationError({"password": "Choose a password for your new account."})
            candidate = User(email=invitation.email, full_name=full_name)
            try:
                password_validation.validate_password(password, user=candidate)
            except ValidationError as exc:
                raise ValidationError({"password": exc.messages}) from exc
            member = User.objects.create_user(
                email=invitation.email, password=password, full_name=full_name
            )
        if Membership.objects.filter(tenant=tenant, user=member).exists():
            raise ValidationError({"non_field_errors": "You are already a member of this tenant."})
        try:
            with transaction.atomic():
                membership = Membership.objects.create(
                    tenant=tenant, user=member, role=invitation.role
                )
        except IntegrityError as exc:  # a concurrent accept by the same person
            raise ValidationError({"non_field_errors": "You are already a member."}) from exc
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = member
        invitation.save(update_fields=["accepted_at", "accepted_by", "updated_at"])
    transaction.on_commit(
        partial(
            event_publish,
            group=group_for_admins(tenant.id),
            event_type="membership.joined",
            payload={"email": member.email, "role": membership.role},
        )
    )
    return membership
