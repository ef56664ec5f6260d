"""Celery workers: the heartbeat every worker publishes, and (later) the training runtime."""
