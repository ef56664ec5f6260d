"""Every URL pattern of the project, with concrete URLs built from a table of example values.

Tests that must cover every endpoint (tenant isolation, bad input) walk this list, so an
endpoint added later is covered without editing them. A new URL keyword needs an entry in
the values passed to `build`; an unknown one fails loudly.
"""

import re
import uuid
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

NO_MODEL_ID = uuid.UUID("00000000-0000-4000-8000-000000000000")
_PARAM = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


@dataclass(frozen=True)
class Route:
    route: str  # e.g. "api/v1/t/<slug:tenant_slug>/members/"
    callback: object
    name: str | None

    @property
    def params(self) -> list[str]:
        return [m.group("name") for m in _PARAM.finditer(self.route)]

    @property
    def is_api(self) -> bool:
        return self.route.startswith("api/v1/")

    @property
    def view_class(self):
        return getattr(self.callback, "view_class", None) or getattr(self.callback, "cls", None)

    def build(self, values: dict[str, object]) -> str:
        missing = [name for name in self.params if name not in values]
        if missing:
            raise KeyError(f"no example value for URL keyword(s) {missing} in {self.route!r}")
        return "/" + _PARAM.sub(lambda m: str(values[m.group("name")]), self.route)


def _walk(patterns, prefix=""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield Route(route=route, callback=pattern.callback, name=pattern.name)


def all_routes() -> list[Route]:
    """Project routes, less the Django admin's (regex routes, platform administrators only)."""
    return [r for r in _walk(get_resolver().url_patterns) if not r.route.startswith("admin/")]


def tenant_routes() -> list[Route]:
    return [r for r in all_routes() if "tenant_slug" in r.params]


def example_values(world, slug_of=None) -> dict[str, object]:
    """URL values for every keyword: the tenant slug of `slug_of` (default: `world`'s) and the
    objects of `world` (a tests.conftest.TenantWorld)."""
    return {
        "tenant_slug": (slug_of or world).tenant.slug,
        "slug": (slug_of or world).tenant.slug,
        "membership_id": world.learner.id,
        "invitation_id": world.invitation.id,
        "course_id": world.course.id,
        "lesson_id": world.lesson.id,
        "skill_id": world.skill.id,
        "exercise_id": world.exercise.id,
        "assignment_id": world.assignment.id,
        "enrollment_id": world.enrollment.id,
        "submission_id": world.submission.id,
        "job_id": world.job.id,
        "dataset_slug": world.dataset.slug,
        "number": world.dataset_version.number,
        # A class and an image of a version's preview grid (the world's version has none yet).
        "class_index": 0,
        "position": 0,
        # The worlds keep no trained model (tests/trained_models make their own): an id that
        # names none, so walkers see its routes answer 404 like any unknown object, unless a
        # test gave the world one (tests/test_api_input.py).
        "model_id": getattr(world, "model_id", NO_MODEL_ID),  # one a test gave the world
        "key_id": "00000000-0000-4000-8000-00000000c0de",  # a model API key that is none
        # Nor any grade notice: an id that names none.
        "notice_id": 0,
    }
