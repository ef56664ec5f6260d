from django.apps import AppConfig


class TrainedModelsConfig(AppConfig):
    name = "apps.trained_models"
    label = "trained_models"
    verbose_name = "Trained models"

    def ready(self) -> None:
        from apps.trained_models import receivers

        receivers.connect()  # a course's new retention moves its models' expiry
