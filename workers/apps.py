from django.apps import AppConfig


class WorkersConfig(AppConfig):
    """The worker side as a Django app, so its management commands are found."""

    name = "workers"
    label = "workers"
    verbose_name = "Workers"
