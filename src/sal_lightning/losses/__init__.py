"""SAL-Net and SEC/DSRG losses, pure PyTorch (no Lightning import)."""

__all__: list[str] = []
