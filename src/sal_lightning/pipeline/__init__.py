"""The four-step SAL-Net pipeline: steps, runner, manifest, resume."""

__all__: list[str] = []
