"""Where learning's pages and API point to: URLs are built here, from what the selectors
return (ids and kinds), not in the selectors."""

from django.urls import reverse

from apps.learning.selectors import Recommendation

# A recommendation's kind -> the page it links to (apps/jobs/urls.py, apps/learning/urls.py).
_PAGES = {"assignment": "assignment", "lesson": "lesson"}


def recommendation_url(step: Recommendation, *, tenant_slug: str) -> str | None:
    """The page of the assignment or lesson the next step names, or None when it names none."""
    if step.target_id is None or step.kind not in _PAGES:
        return None
    return reverse(_PAGES[step.kind], args=[tenant_slug, step.target_id])
