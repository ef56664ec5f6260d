from django.apps import AppConfig


class ServingConfig(AppConfig):
    name = "apps.serving"
    label = "serving"
    verbose_name = "Model serving"

    def ready(self):
        from apps.serving import grants, services
        from apps.trained_models.texts import try_runner_connect

        grants.connect()  # changes to who may predict end the fast path's grants
        try_runner_connect(services.texts_try_run)  # the try page runs texts as the API does
