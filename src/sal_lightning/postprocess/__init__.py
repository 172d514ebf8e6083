"""Inference post-processing: dense CRF and multi-scale + flip fusion."""

__all__: list[str] = []
