"""The inference pool: a dedicated ASGI process that runs trained models with onnxruntime, never
the web process (docs/models.md, "Serving"). `client.py` is the web side that calls it."""
