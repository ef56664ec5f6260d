"""The trained models' receivers of the courses app's signals (apps/courses/signals.py),
connected in TrainedModelsConfig.ready; each runs inside the transaction of the change."""

from apps.courses.signals import course_retention_changed
from apps.trained_models import services


def on_course_retention_changed(*, course, **_) -> None:
    services.trained_model_expiry_recompute(course=course)


def connect() -> None:
    course_retention_changed.connect(
        on_course_retention_changed, dispatch_uid="trained_models.course_retention_changed"
    )
