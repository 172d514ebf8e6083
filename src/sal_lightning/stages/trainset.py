"""The fine scorer's training set, synthesised from a folder of proxies (SAL-Net Sec. III-B2).

:class:`ProxySource` reads images, proxies and reference masks by id; the sampling itself (the
paper's four kinds of samples and their proportions) is
:func:`~sal_lightning.scoring.synthesis.synthesize_samples`; :func:`build_scorer_training_set`
writes the samples as a folder that :class:`~sal_lightning.data.datamodules.MaskScorerDataModule` reads.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from sal_lightning._atomic import atomic_write_text
from sal_lightning.data.io import read_image, read_label_png, read_reference, read_scores
from sal_lightning.data.layout import raise_if_missing, resolve_ids, resolve_voc_root, root_classes
from sal_lightning.scoring.coarse import boundary_accuracy_np
from sal_lightning.scoring.synthesis import ProxyRecord, SynthesisSettings, synthesize_samples
from sal_lightning.stages.coarse import CoarseSettings

PathLike = str | os.PathLike[str]


class ProxySource:
    """Reads images, proxies and reference masks by id from a VOC root and two folders.

    The proxies' label values are checked against the root's class list (its ``classes.txt``,
    VOC's 21 classes without one); a sample's mask is the proxy's foreground, whatever its class.

    ``load(image_id)`` returns a :class:`ProxyRecord` (AC computed with ``coarse``, the settings of
    Eq. 3, unless given in ``ac``).
    """

    def __init__(
        self,
        root: PathLike,
        proxies: PathLike,
        references: PathLike,
        *,
        coarse: CoarseSettings | None = None,
        ac: Mapping[str, float] | None = None,
    ) -> None:
        self.images = resolve_voc_root(root) / "JPEGImages"
        self.num_classes = len(root_classes(root))  # K of the proxies' label values
        self.proxies = Path(proxies)
        self.references = Path(references)
        self.coarse = coarse or CoarseSettings()
        self.ac = dict(ac or {})

    def check(self, ids: Sequence[str]) -> None:
        """``FileNotFoundError`` naming what is missing for ``ids``."""
        raise_if_missing([self.images / f"{i}.jpg" for i in ids], "images", self.images)
        raise_if_missing([self.proxies / f"{i}.png" for i in ids], "proxy annotations", self.proxies)
        raise_if_missing([self.references / f"{i}.png" for i in ids], "reference masks", self.references)

    def load(self, image_id: str) -> ProxyRecord:
        image = read_image(self.images / f"{image_id}.jpg")
        labels = read_label_png(self.proxies / f"{image_id}.png", self.num_classes)
        reference = read_reference(self.references / f"{image_id}.png")
        if labels.shape != image.shape[:2] or reference.shape != image.shape[:2]:
            raise ValueError(
                f"{image_id}: image {image.shape[:2]}, proxy {labels.shape} and reference "
                f"{reference.shape} must have the same size"
            )
        from sal_lightning.data.proxy_data import proxy_foreground

        fg = proxy_foreground(labels)
        ac = self.ac.get(image_id)
        if ac is None or ac != ac:
            ac = self.accuracy(image, reference, fg)
        return ProxyRecord(image_id, image, fg, reference, ac=float(ac))

    def accuracy(self, image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
        """AC (Eq. 3) of a bool ``[H, W]`` mask against a reference on an image, with ``coarse``."""
        return boundary_accuracy_np(image, reference, mask, **self.coarse.accuracy())


def build_scorer_training_set(
    root: PathLike,
    proxies: PathLike,
    *,
    references: PathLike,
    out: PathLike,
    split: str | Sequence[str] | None = None,
    synthesis: SynthesisSettings | None = None,
    coarse: CoarseSettings | None = None,
    scores: PathLike | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Synthesise the scorer's training set from the proxies and write it as a sample folder
    (:mod:`sal_lightning.data.scorer_data`); returns ``out``.

    Args:
        root: VOC root (the images).
        proxies: the folder of the proxies (``<id>.png``).
        references: the folder of their reference masks (``<id>.png``).
        out: the sample folder to write.
        split: split name, list file or ids; ``None``: every PNG in ``proxies``.
        synthesis: thresholds, shares and strengths (the paper's by default).
        coarse: the settings of Eq. 3 with which AC is computed (as in the coarse scores).
        scores: a ``scores.csv`` whose ``ac`` column is reused (coarse scoring computed it); the
            rest is computed.
        overwrite: replace a sample folder built with other settings (else that raises).
        progress: show progress bars.

    The folder is built beside ``out`` and renamed into place, with the configuration in
    ``synthesis.json``: a rerun with the same configuration and ids returns at once.
    """
    from sal_lightning.data.scorer_data import write_scorer_samples

    config = synthesis or SynthesisSettings()
    coarse = coarse or CoarseSettings()
    folder = Path(out)
    ids = resolve_ids(root, split, proxies)
    meta = {
        "config": config.as_dict(),
        "coarse": coarse.as_dict(),
        "ids": len(ids),
        "first_ids": list(ids[:3]),
    }
    marker = folder / "synthesis.json"
    if folder.exists():
        if marker.is_file() and json.loads(marker.read_text()) == json.loads(json.dumps(meta)):
            return folder
        if not overwrite:
            raise FileExistsError(
                f"{folder}: a scorer training set built with other settings exists (pass overwrite=True)"
            )
    ac = {i: r["ac"] for i, r in read_scores(scores).items()} if scores is not None else None
    source = ProxySource(root, proxies, references, coarse=coarse, ac=ac)
    tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write_scorer_samples(tmp, synthesize_samples(source, ids, config, progress))
        atomic_write_text(tmp / "synthesis.json", json.dumps(meta, indent=2) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return folder
