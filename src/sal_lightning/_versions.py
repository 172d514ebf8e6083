"""The versions of Python and of the libraries that shape a result, recorded beside every artefact."""

from __future__ import annotations

import platform
from importlib import metadata

from sal_lightning._threads import threads_record

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
    """``{"python": ..., <distribution>: <version> or "not installed", "torch threads": ...}`` for
    :data:`DISTRIBUTIONS`, and the intra-op threads of this process (:mod:`sal_lightning._threads`):
    another thread count moves a result in its last digits."""
    versions = {"python": platform.python_version()}
    for dist in DISTRIBUTIONS:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    versions["torch threads"] = threads_record()
    return versions
