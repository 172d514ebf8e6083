"""Where saliency maps come from: a folder of grayscale PNGs, a callable, or the built-in method.

Kept apart from the datasets (:mod:`sal_lightning.data.proxy_data`) so that the settings and
signatures naming a saliency source are read without importing torch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sal_lightning.data.io import PathLike, read_gray_png
from sal_lightning.scoring.saliency import SaliencyFn

SaliencySource = Callable[..., Any] | PathLike | None
"""A folder of saliency PNGs, a callable image -> saliency map (:data:`SaliencyFn`), or ``None``
(the built-in method)."""


def load_saliency(saliency: SaliencySource, image_id: str) -> np.ndarray | SaliencyFn | None:
    """The saliency of ``image_id`` from a source: the folder's ``<id>.png`` map, else the source itself."""
    if saliency is not None and not callable(saliency):
        return read_gray_png(Path(saliency) / f"{image_id}.png")
    return saliency
