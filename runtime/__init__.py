"""The model-building runtime: plain PyTorch, no Django (see docs/runtime.md)."""
