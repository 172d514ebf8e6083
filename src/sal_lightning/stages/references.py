"""Reference masks H of a whole split (SAL-Net Sec. III-B1), written as grayscale PNGs.

:class:`ReferenceSettings` says how saliency becomes a mask; :func:`build_references` runs
:func:`~sal_lightning.scoring.references.reference_mask` on every image, with the saliency of a
folder of PNGs, a callable, or the built-in method, in a pool of worker processes (``processes``);
a rerun resumes (ids whose PNG exists are skipped).
:class:`MakeReferences` is the pipeline's step.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import pickle
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sal_lightning._threads import one_thread_worker
from sal_lightning.data.io import read_image, write_reference
from sal_lightning.data.layout import raise_if_missing, resolve_ids, resolve_voc_root, split_path
from sal_lightning.data.saliency import SaliencySource, load_saliency
from sal_lightning.scoring.references import Threshold, check_mask_settings, reference_mask
from sal_lightning.scoring.saliency import SaliencyMethod
from sal_lightning.stages.checks import check_at_least, check_crf, check_folder, check_split
from sal_lightning.stages.step import ARTEFACTS, Step, StepContext

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class ReferenceSettings:
    """How saliency becomes a reference mask (the pipeline's ``references`` section; the arguments
    of :func:`~sal_lightning.scoring.references.reference_mask`), and the worker processes.

    Attributes:
        threshold: a value in (0, 1), ``"adaptive"`` (twice the mean saliency, Achanta et al.,
            clipped to [0.1, 0.9]) or ``"otsu"``. ``None`` picks 0.5 for maps given by a folder or a
            callable and ``"adaptive"`` for the built-in method.
        crf: refine the thresholded map with a two-label dense CRF (needs the ``crf`` extra).
        crf_params: keyword overrides for :class:`sal_lightning.postprocess.crf.CRFSettings`.
        max_objects: iterative-erasing rounds for callable sources (1 = a single pass).
        min_object_fraction: smallest new region (fraction of the image) that counts as an object.
        method: the built-in saliency method used when the source is ``None``.
        processes: worker processes building the masks (0: in the calling process); the coarse
            scores build missing masks in their DataLoader workers instead (``num_workers``).
    """

    threshold: Threshold | None = None
    crf: bool = True
    crf_params: dict[str, float] = field(default_factory=dict)
    max_objects: int = 3
    min_object_fraction: float = 0.01
    method: SaliencyMethod = "ft-border"
    processes: int = 0

    def __post_init__(self) -> None:
        check_mask_settings(self.threshold, self.max_objects, self.min_object_fraction)
        check_at_least("processes", self.processes, minimum=0)

    def mask_arguments(self) -> dict[str, Any]:
        """The keyword arguments of :func:`~sal_lightning.scoring.references.reference_mask`
        (JSON-friendly: recorded in score sidecars)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "processes"}


def _check_sources(images: Path, ids: Sequence[str], saliency: SaliencySource) -> None:
    raise_if_missing([images / f"{i}.jpg" for i in ids], "images", images)
    if saliency is not None and not callable(saliency):
        folder = Path(saliency)
        if not folder.is_dir():
            raise FileNotFoundError(f"saliency: folder {folder} not found")
        raise_if_missing([folder / f"{i}.png" for i in ids], "saliency maps", folder)


def _reference_job(
    image_id: str, images: str, out: str, saliency: SaliencySource, arguments: dict[str, Any]
) -> str:
    image = read_image(Path(images) / f"{image_id}.jpg")
    mask = reference_mask(image, load_saliency(saliency, image_id), **arguments)
    write_reference(Path(out) / f"{image_id}.png", mask)
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
    *,
    split: str | Sequence[str] | None = None,
    saliency: SaliencySource = None,
    settings: ReferenceSettings | None = None,
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
        settings: binarisation, dense CRF and iterative-erasing settings, and the worker
            processes (0: in this process; with more, a callable saliency must be picklable: a
            module-level function or a ``functools.partial`` of one).
        overwrite: rebuild the masks that exist (else a rerun resumes).
        progress: show a progress bar.
    """
    settings = settings or ReferenceSettings()
    processes = settings.processes
    ids = resolve_ids(root, default_split(root) if split is None else split)
    images, folder = resolve_voc_root(root) / "JPEGImages", Path(out)
    _check_sources(images, ids, saliency)
    todo = [i for i in ids if overwrite or not (folder / f"{i}.png").is_file()]
    folder.mkdir(parents=True, exist_ok=True)
    if saliency is not None and callable(saliency) and processes > 0 and not _picklable(saliency):
        raise ValueError("saliency: a callable used with processes > 0 must be picklable (use processes=0)")
    job = functools.partial(
        _reference_job,
        images=str(images),
        out=str(folder),
        saliency=saliency,
        arguments=settings.mask_arguments(),
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


@dataclass
class MakeReferences(Step):
    """The pipeline's reference masks H_i, from its saliency (a folder of PNGs, or the built-in
    method when ``None``), into ``references/``."""

    kind = "references"
    reads = (ARTEFACTS.proxies,)
    writes = (ARTEFACTS.references,)
    sources = ("saliency",)
    root: str
    split: str
    saliency: str | None
    settings: ReferenceSettings

    def check(self) -> None:
        check_split(self.root, self.split, argument="train_split")
        check_folder(self.saliency, "saliency")
        if self.settings.crf:
            check_crf("references.crf")

    def run(self, ctx: StepContext) -> dict[str, Any]:
        out = build_references(
            self.root, ctx.paths.references, split=self.split, saliency=self.saliency, settings=self.settings
        )
        return {"references": sum(1 for _ in out.glob("*.png"))}
