"""Reads of trained models, with the one rule of who sees one: the learner who trained it, the
teachers of its course and the tenant's admins (the rule of its submission: apps/jobs/selectors
submission_visible, both through apps.courses.access.course_teaches). Anyone else, and any id of
another tenant, finds nothing: Http404, nothing written or logged."""

import uuid

from django.db.models import Q, QuerySet
from django.http import Http404
from django_scopes import scope

from apps.courses.access import course_teaches
from apps.courses.models import Course
from apps.tenants.access import TenantNotFound, TenantSuspended, tenant_access
from apps.tenants.models import Role
from apps.trained_models.models import Showcase, TrainedModel

_RELATED = ("onnx", "weights", "course", "exercise", "learner", "submission__assignment")


def _access(user, tenant):
    if not getattr(user, "is_authenticated", False):
        raise Http404
    try:
        return tenant_access(user=user, tenant=tenant)
    except (TenantNotFound, TenantSuspended) as exc:
        raise Http404 from exc


def trained_model_get(
    *, user, tenant, model_id, access=None, related: tuple[str, ...] = _RELATED
) -> TrainedModel:
    """The model `model_id` of `tenant` if `user` may see it; Http404 otherwise. `access`: the
    user's TenantAccess in `tenant` when the caller has it (a request does); `related`: the rows
    read with it (the course always, for the rule)."""
    access = access or _access(user, tenant)
    try:
        model_id = uuid.UUID(str(model_id))
    except ValueError as exc:
        raise Http404 from exc
    with scope(tenant=tenant.id):
        model = (
            TrainedModel.objects.select_related("course", *related)
            .filter(tenant_id=tenant.id, id=model_id)
            .first()
        )
        if model is None:
            raise Http404
        if model.learner_id == user.pk or course_teaches(
            access=access, user=user, course=model.course
        ):
            return model
    raise Http404


def trained_model_list(*, user, tenant, course: Course | None = None) -> QuerySet[TrainedModel]:
    """The models of `tenant` that `user` may see, newest first (of one course when given):
    their own, those of the courses they teach, every one for a tenant admin. Call inside the
    tenant's scope (a request opens it)."""
    access = _access(user, tenant)
    rows = TrainedModel.objects.filter(tenant_id=tenant.id).select_related(*_RELATED)
    if course is not None:
        rows = rows.filter(course=course)
    if not access.allows(Role.ADMIN):
        visible = Q(learner_id=user.pk)
        if access.allows(Role.TEACHER):
            visible |= Q(course__teachers=user)
        rows = rows.filter(visible).distinct()
    return rows.order_by("-created_at", "id")


def _accuracy(model: TrainedModel) -> float:
    value = (model.metrics or {}).get("accuracy")
    return value if isinstance(value, int | float) else -1.0


def showcase_list(*, course: Course, exercise=None) -> list[Showcase]:
    """The course showcase: each learner's chosen model per exercise (of one exercise when
    given), best hidden-test accuracy first (then the earlier model). Call inside the tenant's
    scope, having checked that the viewer teaches the course."""
    rows = Showcase.objects.filter(course=course).select_related(
        "model__onnx", "model__submission", "learner", "exercise"
    )
    if exercise is not None:
        rows = rows.filter(exercise=exercise)
    return sorted(rows, key=lambda row: (-_accuracy(row.model), row.model.created_at, row.pk))


def showcase_model_ids(*, user, course: Course) -> set:
    """The ids of the models `user` has chosen for the showcase of `course`."""
    rows = Showcase.objects.filter(course=course, learner_id=user.pk)
    return set(rows.values_list("model_id", flat=True))
