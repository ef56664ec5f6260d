from django.apps import AppConfig


class ServingConfig(AppConfig):
    name = "apps.serving"
    label = "serving"
    verbose_name = "Model serving"

    def ready(self):
        from apps.serving import grants

        grants.connect()  # changes to who may predict end the fast path's grants
