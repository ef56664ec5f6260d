"""The Celery application: configured from Django settings (CELERY_*), tasks autodiscovered."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("aula")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _add_worker_steps() -> None:
    # Imported here: the heartbeat step imports Django settings, which need the app above.
    from apps.core.heartbeat import WorkerHeartbeat

    app.steps["worker"].add(WorkerHeartbeat)


_add_worker_steps()
