"""Static files that come from npm packages (node_modules/, installed from package.json, never
committed): only the files settings.NODE_STATIC_FILES names are served, under their prefix, so
collectstatic copies those few and not the whole package (onnxruntime-web's dist is 140 MB)."""

from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage


class NodePackageFinder(BaseFinder):
    """settings.NODE_STATIC_FILES: {url prefix: (folder under node_modules, [file names])}."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        root = Path(settings.NODE_MODULES_DIR)
        self.files: dict[str, Path] = {}
        self.storages: dict[str, FileSystemStorage] = {}
        for prefix, (folder, names) in settings.NODE_STATIC_FILES.items():
            location = root / folder
            storage = FileSystemStorage(location=location)
            storage.prefix = prefix
            self.storages[prefix] = storage
            for name in names:
                self.files[f"{prefix}/{name}"] = location / name

    def check(self, **kwargs):
        missing = [str(path) for path in self.files.values() if not path.is_file()]
        if not missing:
            return []
        return [
            Error(
                f"npm files missing: {', '.join(missing)}",
                hint="Run `make install` (npm ci installs package.json's packages).",
                id="core.E101",
            )
        ]

    def find(self, path, find_all=False, **kwargs):
        found = self.files.get(path)
        if found is None or not found.is_file():
            return []
        return [str(found)] if find_all else str(found)

    def list(self, ignore_patterns):
        for path, found in self.files.items():
            if found.is_file():
                prefix, _, name = path.rpartition("/")
                yield name, self.storages[prefix]
