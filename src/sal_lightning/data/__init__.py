"""VOC-format data: constants, file IO, datasets, DataModules, transforms, synthetic data."""

__all__: list[str] = []
