"""Prediction grants: what the prediction API's fast path (apps/serving/fastpath.py) may answer
without Django.

A grant says "this credential may run this model of this tenant, with this allowance": the
Django view writes one after answering a prediction itself, so every grant is a decision the
full stack (authentication, tenant, permission, the model's read) has made. It is stamped with
two epochs read before that decision began: the platform's and the tenant's (by URL slug, so the
fast path can read it before it knows anything else). Every change that could alter a decision
bumps an epoch once it commits (`connect`, below): a person's (their tokens deleted, their user
row saved) bumps the platform's, or their tenants'; a tenant's memberships, courses, teachers,
models, keys and quota bump the tenant's. A grant whose epochs are not the current ones is not
used; nor is one past its expiry (the knox token's own, or GRANT_TTL_S). An epoch that is missing
(Redis emptied) is set to a random value, so an old grant can never match it again.
"""

import hashlib
import json
import logging
import secrets
from dataclasses import asdict, dataclass

import redis
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django_scopes import scopes_disabled

from apps.core.heartbeat import redis_client

PLATFORM_EPOCH = "aula:serving:epoch"
GRANT_TTL_S = 300
# The ASGI scope key the fast path hands Django the epochs under when it cannot answer itself.
EPOCHS_SCOPE_KEY = "aula.predict_epochs"

logger = logging.getLogger(__name__)


def tenant_epoch_key(slug: str) -> str:
    return f"aula:serving:epoch:t:{slug}"


def grant_key(*, authorization: bytes, slug: str, model_id: str) -> str:
    """Where the grant of this Authorization header for this model lives (its hash only)."""
    credential = hashlib.sha256(authorization).hexdigest()
    return f"aula:serving:grant:{credential}:{slug}:{model_id}"


@dataclass(frozen=True)
class Grant:
    """What the fast path needs to answer, all of it decided by the Django view."""

    tenant_id: str
    model_id: str
    blob_id: str  # the model's ONNX blob, as the pool loads it
    dataset: str
    allowed: int  # the tenant's predictions per day, as its quota said
    key_id: str | None  # the model API key, when the credential is one (throttled per key)
    expires_at: float  # unix time: the token's expiry or GRANT_TTL_S, whichever is sooner
    epochs: tuple[int, int]  # (platform, tenant) when the decision began

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, raw: bytes | str) -> "Grant":
        data = json.loads(raw)
        data["epochs"] = tuple(data["epochs"])
        return cls(**data)


def _epoch(value: bytes | None) -> int | None:
    return int(value) if value is not None else None


async def epochs_read(client, slug: str) -> tuple[int, int]:
    """The platform's and the tenant's epochs now (redis.asyncio `client`); a missing one is
    set, to a random value, first."""
    keys = (PLATFORM_EPOCH, tenant_epoch_key(slug))
    values = [_epoch(v) for v in await client.mget(keys)]
    for index, value in enumerate(values):
        if value is None:
            await client.set(keys[index], secrets.randbits(62), nx=True)
            values[index] = _epoch(await client.get(keys[index]))
    return values[0], values[1]


async def grant_valid(client, *, authorization: bytes, slug: str, model_id: str, now: float):
    """The grant for this request if it is still good (redis.asyncio `client`), else None: one
    round trip reads the grant and both epochs."""
    key = grant_key(authorization=authorization, slug=slug, model_id=model_id)
    raw, *current = await client.mget(key, PLATFORM_EPOCH, tenant_epoch_key(slug))
    if raw is None:
        return None
    grant = Grant.loads(raw)
    if tuple(_epoch(v) for v in current) != grant.epochs or now >= grant.expires_at:
        return None
    return grant


def grant_write(*, authorization: bytes, slug: str, grant: Grant, now: float) -> None:
    ttl = int(grant.expires_at - now)
    if ttl < 1:
        return
    key = grant_key(authorization=authorization, slug=slug, model_id=grant.model_id)
    redis_client().set(key, grant.dumps(), ex=ttl)


# --- invalidation -------------------------------------------------------------------------------


def _bump(*keys: str) -> None:
    def bump():
        try:
            client = redis_client()
            for key in keys:
                client.incr(key)
        except redis.RedisError as exc:  # the change stands; grants still end at their expiry
            logger.warning("prediction grants not invalidated (%s): %s", ", ".join(keys), exc)

    transaction.on_commit(bump)


def _slug_of(tenant_id) -> str | None:
    from apps.tenants.models import Tenant

    return Tenant.objects.filter(id=tenant_id).values_list("slug", flat=True).first()


def tenant_changed(tenant_id) -> None:
    """Everything granted in this tenant stops being used once the change commits."""
    slug = _slug_of(tenant_id)
    _bump(tenant_epoch_key(slug) if slug else PLATFORM_EPOCH)


def _on_tenant_row(sender, instance, **kwargs):
    tenant_changed(instance.tenant_id)


def _on_tenant(sender, instance, **kwargs):
    _bump(PLATFORM_EPOCH)  # a rename changes which slug the grants are under


def _on_user(sender, instance, update_fields=None, **kwargs):
    if update_fields is not None and set(update_fields) == {"last_login"}:
        return  # every login saves this; nothing a grant depends on
    _bump(PLATFORM_EPOCH)  # active, staff: they decide every tenant's answer for this person


def _on_token_deleted(sender, instance, **kwargs):
    from django.contrib.auth import get_user_model

    from apps.tenants.models import Membership

    user = get_user_model().objects.filter(pk=instance.user_id).only("is_staff").first()
    if user is None or user.is_staff:  # the user is going too, or acts in every tenant
        _bump(PLATFORM_EPOCH)
        return
    with scopes_disabled():
        slugs = Membership.objects.filter(user_id=instance.user_id).values_list(
            "tenant__slug", flat=True
        )
        _bump(*(tenant_epoch_key(slug) for slug in slugs))


def _on_teachers(sender, instance, action, **kwargs):
    if action in ("post_add", "post_remove", "post_clear"):
        tenant_id = getattr(instance, "tenant_id", None)  # None: a user's side of the relation
        if tenant_id is None:
            _bump(PLATFORM_EPOCH)
        else:
            tenant_changed(tenant_id)


def _on_model_changed(sender, instance, created=False, **kwargs):
    if not created:  # a new model has no grant yet
        tenant_changed(instance.tenant_id)


def connect() -> None:
    """Connects the receivers (apps.serving's AppConfig.ready)."""
    from django.contrib.auth import get_user_model
    from knox.models import AuthToken

    from apps.courses.models import Course
    from apps.quotas.models import TenantQuota
    from apps.serving.models import ModelApiKey
    from apps.tenants.models import Membership, Tenant
    from apps.trained_models.models import TrainedModel

    uid = "serving-grants"
    for model in (Membership, Course, ModelApiKey, TenantQuota):
        post_save.connect(_on_tenant_row, sender=model, dispatch_uid=f"{uid}-{model.__name__}")
        post_delete.connect(_on_tenant_row, sender=model, dispatch_uid=f"{uid}-{model.__name__}")
    post_save.connect(_on_model_changed, sender=TrainedModel, dispatch_uid=f"{uid}-model")
    post_delete.connect(_on_model_changed, sender=TrainedModel, dispatch_uid=f"{uid}-model")
    post_save.connect(_on_tenant, sender=Tenant, dispatch_uid=f"{uid}-tenant")
    post_delete.connect(_on_tenant, sender=Tenant, dispatch_uid=f"{uid}-tenant")
    user = get_user_model()
    post_save.connect(_on_user, sender=user, dispatch_uid=f"{uid}-user")
    post_delete.connect(_on_user, sender=user, dispatch_uid=f"{uid}-user")
    post_delete.connect(_on_token_deleted, sender=AuthToken, dispatch_uid=f"{uid}-token")
    m2m_changed.connect(_on_teachers, sender=Course.teachers.through, dispatch_uid=f"{uid}-teach")
