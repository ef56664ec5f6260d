"""Files from npm packages are served as static files: the ones settings name, nothing else."""

from django.contrib.staticfiles import finders

from apps.core.staticfinders import NodePackageFinder

ORT = "vendor/onnxruntime-web"


def test_the_finder_serves_exactly_the_named_files_of_onnxruntime_web():
    finder = NodePackageFinder()
    listed = sorted(f"{storage.prefix}/{name}" for name, storage in finder.list([]))
    assert listed == [
        f"{ORT}/ort-wasm-simd-threaded.mjs",
        f"{ORT}/ort-wasm-simd-threaded.wasm",
        f"{ORT}/ort.wasm.min.mjs",
    ]
    assert finder.check() == []
    assert finders.find(f"{ORT}/ort.wasm.min.mjs").endswith(
        "node_modules/onnxruntime-web/dist/ort.wasm.min.mjs"
    )
    # In the package, but not named: not served.
    assert finders.find(f"{ORT}/ort.all.min.js") is None
    assert finders.find(f"{ORT}/../../package.json") is None


def test_a_missing_npm_file_is_a_system_check_error(settings, tmp_path):
    settings.NODE_MODULES_DIR = tmp_path
    errors = NodePackageFinder().check()
    assert [error.id for error in errors] == ["core.E101"]
    assert "make install" in errors[0].hint
