"""What the web side and the pool share from Django settings: the pool's settings and the
secret that proves a request comes from the web process."""

import hashlib
import hmac

from django.conf import settings

from apps.serving.inference.app import PoolSettings


def inference_secret() -> str:
    """settings.INFERENCE_SECRET, or one derived from SECRET_KEY (both sides read the same)."""
    if settings.INFERENCE_SECRET:
        return settings.INFERENCE_SECRET
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, b"aula.serving.inference", hashlib.sha256).hexdigest()


def pool_settings() -> PoolSettings:
    return PoolSettings(
        secret=inference_secret(),
        cache_bytes=settings.INFERENCE_CACHE_BYTES,
        cache_models=settings.INFERENCE_CACHE_MODELS,
        batch_window_s=settings.INFERENCE_BATCH_WINDOW_MS / 1000,
        max_batch_rows=settings.INFERENCE_MAX_BATCH,
        max_request_bytes=settings.INFERENCE_MAX_REQUEST_BYTES,
        run_threads=settings.INFERENCE_RUN_THREADS,
        session_threads=settings.INFERENCE_SESSION_THREADS,
    )
