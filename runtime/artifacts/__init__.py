"""A trained model as files: exported (ONNX, safetensors), checked before it is trusted, and run
with onnxruntime. Plain Python and PyTorch: no Django, so the worker, the inference pool and the
benchmarks share it."""
