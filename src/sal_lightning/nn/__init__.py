"""Network building blocks, pure PyTorch (no Lightning import)."""

__all__: list[str] = []
