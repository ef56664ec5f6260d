from django.apps import AppConfig


class LearningConfig(AppConfig):
    name = "apps.learning"
    label = "learning"
    verbose_name = "Learning records"

    def ready(self) -> None:
        from apps.learning import receivers

        receivers.connect()  # learning records what the jobs app signals
