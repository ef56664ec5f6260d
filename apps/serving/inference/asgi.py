"""The pool as uvicorn imports it: Django configured (settings, database, storage), then the
application. `python -m apps.serving.inference` runs it."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from apps.serving.inference.app import InferenceApp  # noqa: E402 (after django.setup())
from apps.serving.inference.config import pool_settings  # noqa: E402
from apps.serving.inference.storage import artifact_read  # noqa: E402

application = InferenceApp(pool_settings(), artifact_read)
