"""Step 1 of SAL-Net: tags -> CAMs -> seeds -> ProxyNet -> proxy annotations, or a folder of
pseudo-labels imported in its place.

:func:`run_proxies` runs the sub-steps of :class:`~sal_lightning.stages.step1.Step1` in order with
the settings of :class:`~sal_lightning.stages.proxy_settings.ProxySettings` (the ``sal-lightning
proxies`` command); :func:`import_proxies` copies a folder of PNGs from any method after checking
it. :class:`MakeProxies` and :class:`ImportProxies` are the pipeline's two ways to its first step
(``step1/proxies``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sal_lightning._atomic import atomic_write_text
from sal_lightning.data.io import read_label_png, write_label_png
from sal_lightning.data.layout import read_split, resolve_voc_root, root_classes
from sal_lightning.stages.checks import check_crf, check_folder, check_split
from sal_lightning.stages.proxy_settings import ProxySettings, check_networks
from sal_lightning.stages.quality import label_quality
from sal_lightning.stages.step import ARTEFACTS, Step, StepContext
from sal_lightning.stages.step1 import OUTPUTS, STEPS, Step1, SubStep
from sal_lightning.stages.trainer import TrainerSettings

PathLike = str | os.PathLike[str]


def _clear(output: Path) -> None:
    if output.is_dir():
        shutil.rmtree(output)
    else:
        output.unlink(missing_ok=True)


def run_proxies(
    root: PathLike,
    workdir: PathLike,
    *,
    split: str = "train_aug",
    saliency: PathLike | None = None,
    settings: ProxySettings | None = None,
    steps: Sequence[SubStep] = STEPS,
    resume: bool = False,
    val_split: str | None = None,
    trainer: TrainerSettings | None = None,
) -> dict[str, Any]:
    """Run the sub-steps ``steps`` of step 1 in order (cam, cams, seeds, train, predict).

    Args:
        root: the VOC root.
        workdir: the work folder (see the module docstring).
        split: the images to label (their tags train the networks).
        saliency: a folder of grayscale saliency PNGs for the background seeds; needed by the
            ``seeds`` sub-step unless ``settings.background`` is ``"cam"``.
        settings: the settings of step 1 (the paper's by default).
        steps: the sub-steps to run, in order: ``cam``, ``cams``, ``seeds``, ``train``, ``predict``.
        resume: keep what an earlier run finished (a training sub-step whose checkpoint exists is
            skipped, the per-image sub-steps only do the ids without a file); else each requested
            sub-step starts from nothing (its output, see
            :data:`~sal_lightning.stages.step1.OUTPUTS`, is removed first).
        val_split: also predict this split with the ProxyNet alone, without tags (the paper's P1),
            into ``workdir/p1``.
        trainer: the settings of every Trainer (``devices=N`` shards the predict loops).

    Returns a report (also written to ``workdir/proxies.json``): the configuration, the steps and
    final losses of the trainings run (``training``), and the seed, proxy and P1 quality against the
    ground truth where it exists (:class:`LabelQuality` as dicts).
    """
    settings = settings or ProxySettings()
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"steps: unknown {unknown}, expected some of {list(STEPS)}")
    check_networks(settings)
    if "seeds" in steps:
        settings.check_saliency(saliency)
        warning = settings.warning()
        if warning is not None:
            print(warning, file=sys.stderr, flush=True)
    work = Step1(root, Path(workdir), split=split, settings=settings, saliency=saliency, trainer=trainer)
    work.workdir.mkdir(parents=True, exist_ok=True)
    for step in (s for s in STEPS if s in steps):
        output = work.workdir / OUTPUTS[step]
        if not resume:
            _clear(output)
        elif output.suffix == ".ckpt" and output.is_file():
            continue
        work.run(step)
    report: dict[str, Any] = {"config": asdict(settings), "split": split, "saliency": saliency}
    report["training"] = work.trained
    _add_quality(report, root, split, {"seeds": work.workdir / "seeds", "proxies": work.workdir / "proxies"})
    if val_split is not None:
        p1 = Step1(
            root, work.workdir / "p1", split=val_split, settings=settings, saliency=saliency, trainer=trainer
        )
        folder = p1.predict_proxies(work.workdir / "proxynet.ckpt", with_tags=False)
        _add_quality(report, root, val_split, {"p1": folder})
    atomic_write_text(work.workdir / "proxies.json", json.dumps(report, indent=2, default=str) + "\n")
    return report


def _add_quality(report: dict[str, Any], root: PathLike, split: str, folders: dict[str, Path]) -> None:
    """``report[name]``: the quality of each folder of label maps that holds every id of ``split``."""
    ids = read_split(resolve_voc_root(root), split)
    for name, folder in folders.items():
        if all((folder / f"{i}.png").is_file() for i in ids):
            report[name] = asdict(label_quality(folder, root, ids=ids))


def check_proxies(root: PathLike, proxies: PathLike, *, split: str) -> list[str]:
    """The ids of ``split``; ``FileNotFoundError`` naming the folder ``proxies`` when it lacks the
    PNG of one of them."""
    check_folder(str(proxies), "proxies")
    ids = check_split(str(root), split, argument="train_split")
    missing = [i for i in ids if not (Path(proxies) / f"{i}.png").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{proxies}: {len(missing)} of {len(ids)} proxies of split {split!r} are "
            f"missing, e.g. {[f'{i}.png' for i in missing[:5]]}"
        )
    return ids


def import_proxies(root: PathLike, proxies: PathLike, *, split: str, out: PathLike) -> int:
    """Copy the pseudo-labels of ``split`` from the folder ``proxies`` (one PNG per id, from any
    method) to ``out``, checked: values 0..C or 255, C the root's foreground classes (those of its
    ``classes.txt``, VOC's 20 without one). Ids whose PNG is in ``out`` already are skipped.
    Returns the number of ids."""
    ids = check_proxies(root, proxies, split=split)
    k = len(root_classes(root))
    for image_id in tqdm(ids, desc="import proxies", unit="img", disable=len(ids) < 200):
        target = Path(out) / f"{image_id}.png"
        if not target.is_file():
            write_label_png(target, read_label_png(Path(proxies) / f"{image_id}.png", k), k)
    return len(ids)


@dataclass
class MakeProxies(Step):
    """Step 1: CAM classifier -> seeds -> ProxyNet -> ``step1/proxies``; P1 = ProxyNet on ``val_split``."""

    kind = "proxies"
    writes = (ARTEFACTS.step1,)
    sources = ("saliency",)
    root: str
    split: str
    val_split: str | None
    saliency: str | None
    settings: ProxySettings

    def check(self) -> None:
        check_split(self.root, self.split, argument="train_split")
        check_split(self.root, self.val_split, argument="val_split")
        check_folder(self.saliency, "saliency")
        check_networks(self.settings)
        if self.settings.needs_crf:
            check_crf("step 1's dense CRF (crf or constrain_weight)")
        self.settings.check_saliency(self.saliency)

    def run(self, ctx: StepContext) -> dict[str, Any]:
        report = run_proxies(
            self.root,
            ctx.paths.step1,
            split=self.split,
            saliency=self.saliency,
            settings=self.settings,
            resume=not ctx.fresh,
            val_split=self.val_split,
            trainer=ctx.trainer,
        )
        result: dict[str, Any] = {k: report[k]["miou"] for k in ("seeds", "proxies") if k in report}
        if "p1" in report:
            result["p1_val_miou"] = report["p1"]["miou"]
        result |= {f"{net}_loss": t["loss"] for net, t in report["training"].items() if "loss" in t}
        return result


@dataclass
class ImportProxies(Step):
    """Step 1 replaced by a folder of pseudo-labels from any method (one PNG per id of ``split``),
    checked and copied to ``step1/proxies`` (:func:`import_proxies`). The folder's content hash is
    part of the configuration: after a PNG there changes, the next run imports again and re-runs
    every later step.
    """

    kind = "proxies"
    writes = (ARTEFACTS.step1,)
    sources = ("proxies",)
    root: str
    split: str
    proxies: str

    def check(self) -> None:
        check_proxies(self.root, self.proxies, split=self.split)

    def run(self, ctx: StepContext) -> dict[str, Any]:
        count = import_proxies(self.root, self.proxies, split=self.split, out=ctx.paths.proxies)
        return {"imported": count}
