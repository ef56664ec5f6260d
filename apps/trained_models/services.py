"""Writes of trained models: store their artifacts, delete them, purge the expired."""


def trained_model_expiry_recompute(*, course) -> int:
    raise NotImplementedError
