from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DatasetsConfig(AppConfig):
    name = "apps.datasets"
    label = "datasets"
    verbose_name = _("Datasets")

    def ready(self) -> None:
        from apps.datasets import source

        source.connect()  # "upload:<key>" names a ready version for the runtime's datasets
