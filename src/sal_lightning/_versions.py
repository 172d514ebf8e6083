"""The versions of Python and of the libraries that shape a result, recorded beside every artefact."""

from __future__ import annotations

import platform
from importlib import metadata

#: the distributions whose release can change a figure
DISTRIBUTIONS: tuple[str, ...] = (
    "sal-lightning",
    "torch",
    "lightning",
    "numpy",
    "segmentation-models-pytorch",
    "albumentations",
)


def library_versions() -> dict[str, str]:
    """``{"python": ..., <distribution>: <version> or "not installed"}`` for :data:`DISTRIBUTIONS`."""
    versions = {"python": platform.python_version()}
    for dist in DISTRIBUTIONS:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions
