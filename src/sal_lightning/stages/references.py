"""Reference masks H of a whole split (SAL-Net Sec. III-B1), written as grayscale PNGs.

:func:`build_references` runs :func:`~sal_lightning.scoring.references.reference_mask` on every
image, with the saliency of a folder of PNGs, a callable, or the built-in method, in a pool of
worker processes (``processes``); a rerun resumes (ids whose PNG exists are skipped).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import pickle
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from sal_lightning._threads import one_thread_worker
from sal_lightning.data.io import read_image, write_reference
from sal_lightning.data.layout import raise_if_missing, resolve_ids, resolve_voc_root, split_path
from sal_lightning.data.saliency import SaliencySource, load_saliency
from sal_lightning.scoring.references import ReferenceConfig, reference_mask
from sal_lightning.stages.checks import check_at_least

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class ReferenceSettings(ReferenceConfig):
    """The reference masks of a pipeline (its ``references`` section): how saliency becomes a
    mask (:class:`~sal_lightning.scoring.references.ReferenceConfig`) and the worker processes.

    Attributes:
        processes: worker processes building the masks (0: in the pipeline's process).
    """

    processes: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_at_least("processes", self.processes, 0)


def _check_sources(images: Path, ids: Sequence[str], saliency: SaliencySource) -> None:
    raise_if_missing([images / f"{i}.jpg" for i in ids], "images", images)
    if saliency is not None and not callable(saliency):
        folder = Path(saliency)
        if not folder.is_dir():
            raise FileNotFoundError(f"saliency: folder {folder} not found")
        raise_if_missing([folder / f"{i}.png" for i in ids], "saliency maps", folder)


def _reference_job(
    image_id: str, images: str, out: str, saliency: SaliencySource, reference: ReferenceConfig
) -> str:
    image = read_image(Path(images) / f"{image_id}.jpg")
    write_reference(
        Path(out) / f"{image_id}.png", reference_mask(image, load_saliency(saliency, image_id), reference)
    )
    return image_id


def _picklable(value: object) -> bool:
    try:
        pickle.dumps(value)
    except (pickle.PicklingError, TypeError, AttributeError):
        return False
    return True


def default_split(root: PathLike) -> str:
    """``train_aug`` when the root has its list, else ``train``."""
    return "train_aug" if split_path(resolve_voc_root(root), "train_aug").is_file() else "train"


def build_references(
    root: PathLike,
    out: PathLike,
    split: str | Sequence[str] | None = None,
    saliency: SaliencySource = None,
    reference: ReferenceConfig | None = None,
    processes: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write the reference mask of every id of ``split`` to ``<out>/<id>.png``; returns ``out``.

    Args:
        root: VOC root (images ``JPEGImages/<id>.jpg``).
        out: folder of the reference PNGs (0 background, 255 salient).
        split: split name, list file or ids; ``None``: ``train_aug`` when listed, else ``train``.
        saliency: folder of saliency PNGs ``<id>.png``, a callable image -> map, or ``None`` (the
            built-in method).
        reference: binarisation, dense CRF and iterative-erasing settings.
        processes: worker processes (0: in this process); a callable saliency must then be
            picklable (a module-level function or a ``functools.partial`` of one).
        overwrite: rebuild the masks that exist (else a rerun resumes).
        progress: show a progress bar.
    """
    check_at_least("processes", processes, 0)
    reference = reference or ReferenceConfig()
    ids = resolve_ids(root, default_split(root) if split is None else split)
    images, folder = resolve_voc_root(root) / "JPEGImages", Path(out)
    _check_sources(images, ids, saliency)
    todo = [i for i in ids if overwrite or not (folder / f"{i}.png").is_file()]
    folder.mkdir(parents=True, exist_ok=True)
    if saliency is not None and callable(saliency) and processes > 0 and not _picklable(saliency):
        raise ValueError("saliency: a callable used with processes > 0 must be picklable (use processes=0)")
    job = functools.partial(
        _reference_job, images=str(images), out=str(folder), saliency=saliency, reference=reference
    )
    bar = tqdm(total=len(todo), desc="references", unit="img", disable=not progress)
    if processes > 0 and len(todo) > 1:
        context = multiprocessing.get_context("spawn")  # safe beside CUDA / DDP, like the CRF pool
        with ProcessPoolExecutor(processes, mp_context=context, initializer=one_thread_worker) as pool:
            for _ in pool.map(job, todo, chunksize=max(1, len(todo) // (8 * processes))):
                bar.update()
    else:
        for image_id in todo:
            job(image_id)
            bar.update()
    bar.close()
    return folder
