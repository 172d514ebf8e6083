"""LightningModules: SALSegmenter, MaskScorer, ProxyNet."""

__all__: list[str] = []
