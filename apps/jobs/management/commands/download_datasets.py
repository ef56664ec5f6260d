from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from runtime.datasets import (
    DatasetDownloadFailed,
    DatasetMissing,
    dataset_info,
    dataset_names,
    default_data_dir,
    download_dataset,
    load_dataset,
)


def _downloadable() -> list[str]:
    return [name for name in dataset_names() if dataset_info(name).requires_download]


class Command(BaseCommand):
    help = (
        "Download datasets into DATA_DIR (default: every one that needs a download: "
        f"{', '.join(_downloadable())}). The others are generated in memory."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "names", nargs="*", metavar="name", help=f"one of: {', '.join(dataset_names())}"
        )
        parser.add_argument(
            "--data-dir",
            default=None,
            help="where to put them (default: the DATA_DIR setting)",
        )

    def handle(self, *args, names=(), data_dir=None, **options):
        folder = Path(data_dir or getattr(settings, "DATA_DIR", None) or default_data_dir())
        folder = folder.expanduser().resolve()
        unknown = [name for name in names if name not in dataset_names()]
        if unknown:
            raise CommandError(
                f"Unknown dataset{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}. "
                f"Known datasets: {', '.join(dataset_names())}."
            )
        for name in dict.fromkeys(names or _downloadable()):
            if not dataset_info(name).requires_download:
                self.stdout.write(f"{name}: generated in memory, nothing to download.")
                continue
            try:
                splits = load_dataset(name, data_dir=folder)
                verb = "already in"
            except DatasetMissing:
                self.stdout.write(f"{name}: downloading into {folder} ...")
                try:
                    download_dataset(name, folder)
                except DatasetDownloadFailed as exc:
                    raise CommandError(
                        f"{exc}. Check this machine's internet access (or copy the files "
                        f"into {folder}) and run the command again."
                    ) from exc
                splits = load_dataset(name, data_dir=folder)
                verb = "downloaded to"
            train, val, test = splits.info.sizes
            self.stdout.write(
                self.style.SUCCESS(
                    f"{name}: {verb} {folder} ({train} training, {val} validation, "
                    f"{test} test images)."
                )
            )
