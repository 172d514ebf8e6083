"""Proxy-annotation quality scores (SAL-Net Sec. III-B), pure PyTorch (no Lightning import)."""

__all__: list[str] = []
