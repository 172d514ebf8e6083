"""The sub-steps of step 1 of SAL-Net: tags -> CAMs -> seeds -> ProxyNet -> proxy annotations.

Each method of :class:`Step1` does one sub-step in a work folder and can be called on its own;
:func:`~sal_lightning.stages.proxies.run_proxies` runs them in order (the ``sal-lightning proxies``
command and the pipeline's ``proxies`` step call it)::

    workdir/
      cam.ckpt            CAMClassifier weights                      Step1.train_cam()
      cams/<id>.npz       tagged classes' CAMs (data.io.write_cams)   Step1.extract_cams()
      seeds/<id>.png      seeds: 0 bg, 1..C, 255 unlabelled          Step1.make_seeds()
      proxynet.ckpt       ProxyNet weights                           Step1.train_proxy_net()
      proxies/<id>.png    proxy annotations G_i                      Step1.predict_proxies()
      p1/proxies/<id>.png ProxyNet on the evaluation split, no tags  run_proxies(val_split=...)
      proxies.json        seed and proxy quality vs ground truth,    run_proxies()
                          the trainings' steps and final losses

Per-image sub-steps skip the ids whose file exists (an interrupted run resumes); every file is
written atomically. ``trainer`` (:class:`~sal_lightning.stages.trainer.TrainerSettings`) goes to
every Trainer, so the predict loops shard across GPUs under DDP.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from tqdm import tqdm

from sal_lightning._lazy import lazy_module
from sal_lightning.data.io import read_cams, read_gray_png, write_id_list, write_label_png
from sal_lightning.data.layout import read_split, resolve_voc_root, root_classes
from sal_lightning.stages.checks import model_classes
from sal_lightning.stages.proxy_settings import ProxySettings
from sal_lightning.stages.trainer import (
    TrainerSettings,
    final_losses,
    make_trainer,
    save_checkpoint,
    seed_everything,
)

if not TYPE_CHECKING:  # see sal_lightning._lazy.lazy_module
    torch = lazy_module("torch")
else:
    import torch
    from lightning.pytorch.callbacks import BasePredictionWriter

    from sal_lightning.models.cam import CAMClassifier
    from sal_lightning.models.proxy import ProxyNet

PathLike = str | os.PathLike[str]
SubStep = Literal["cam", "cams", "seeds", "train", "predict"]
STEPS: tuple[SubStep, ...] = ("cam", "cams", "seeds", "train", "predict")
#: what each sub-step writes, relative to the work folder
OUTPUTS: dict[str, str] = {
    "cam": "cam.ckpt",
    "cams": "cams",
    "seeds": "seeds",
    "train": "proxynet.ckpt",
    "predict": "proxies",
}


@dataclass
class Step1:
    """Step 1 on the ids of ``split`` of a VOC root, in the work folder ``workdir``.

    Attributes:
        root: the VOC root.
        workdir: the work folder (see the module docstring).
        split: the images to label (their tags train the networks).
        settings: the settings of step 1.
        saliency: a folder of grayscale saliency PNGs for the background seeds (used with
            ``settings.background="saliency"``).
        trainer: the settings of every Trainer.
        trained: what each training of this object ended at: ``{"cam" | "proxynet": {"steps",
            "loss", ...}}`` (the last step's logged loss terms).
    """

    root: PathLike
    workdir: Path
    split: str = "train_aug"
    settings: ProxySettings = field(default_factory=ProxySettings)
    saliency: PathLike | None = None
    trainer: TrainerSettings | None = None
    trained: dict[str, dict[str, float]] = field(default_factory=dict, init=False)

    def _todo(self, out: Path, suffix: str) -> str | None:
        """A list file of the ids without ``out/<id><suffix>`` (None when all are done)."""
        todo = [
            i
            for i in read_split(resolve_voc_root(self.root), self.split)
            if not (out / f"{i}{suffix}").is_file()
        ]
        if not todo:
            return None
        path = self.workdir / f".{out.name}.todo.txt"
        write_id_list(path, todo)
        return str(path)

    def _predict(self, model: CAMClassifier | ProxyNet, todo: str, writer: BasePredictionWriter) -> None:
        """A predict loop over the ids of the list file ``todo``, which is removed afterwards."""
        from sal_lightning.data.datamodules import VOCClassificationDataModule, VOCSegmentationDataModule
        from sal_lightning.models.cam import CAMClassifier

        data: VOCSegmentationDataModule | VOCClassificationDataModule
        if isinstance(model, CAMClassifier):
            data = VOCClassificationDataModule(
                str(self.root), predict_split=todo, num_workers=self.settings.num_workers
            )
        else:
            data = VOCSegmentationDataModule(
                str(self.root), predict_split=todo, num_workers=self.settings.num_workers
            )
        loop = make_trainer(self.trainer, callbacks=[writer], progress=True)
        loop.predict(model, datamodule=data, return_predictions=False)
        loop.strategy.barrier("proxies-todo")  # every rank has finished with the list
        if loop.is_global_zero:
            Path(todo).unlink(missing_ok=True)

    def _fit(self, model: CAMClassifier | ProxyNet, data: Any, steps: int, checkpoint: str) -> Path:
        """Train ``model`` for ``steps`` and save it as ``workdir/<checkpoint>``."""
        loop = make_trainer(self.trainer, progress=True, max_steps=steps, limit_val_batches=0)
        loop.fit(model, datamodule=data)
        self.trained[Path(checkpoint).stem] = {"steps": loop.global_step, **final_losses(loop)}
        return save_checkpoint(loop, self.workdir / checkpoint)

    def _batch(self, name: str) -> int:
        """The per-device batch of the setting ``name`` (the trainer options divide global ones)."""
        return (self.trainer or TrainerSettings()).local_batch(getattr(self.settings, name), name)

    def train_cam(self) -> Path:
        """Train the CAM classifier on the tags of the split; returns ``workdir/cam.ckpt``."""
        from sal_lightning.data.datamodules import VOCClassificationDataModule
        from sal_lightning.models.cam import CAMClassifier

        settings = self.settings
        seed_everything(settings.seed)  # the initial weights too
        model = CAMClassifier(
            num_classes=len(root_classes(self.root)),
            **settings.network("cam"),
            lr=settings.cam_lr,
            cam_scales=tuple(settings.cam_scales),
            conv7_channels=settings.cam_conv7_channels,
        )
        data = VOCClassificationDataModule(
            str(self.root),
            train_split=self.split,
            crop_size=settings.cam_crop_size,
            batch_size=self._batch("cam_batch_size"),
            num_workers=settings.num_workers,
        )
        return self._fit(model, data, settings.cam_steps, "cam.ckpt")

    def extract_cams(self) -> Path:
        """Write ``workdir/cams/<id>.npz`` for every id of the split that has none yet."""
        from sal_lightning.callbacks.writers import CAMWriter
        from sal_lightning.models.cam import CAMClassifier

        out = self.workdir / "cams"
        todo = self._todo(out, ".npz")
        if todo is None:
            return out
        ckpt = self.workdir / "cam.ckpt"
        if not ckpt.is_file():
            raise FileNotFoundError(
                f"{ckpt}: CAM classifier checkpoint not found (run the 'cam' sub-step first)"
            )
        scales = tuple(self.settings.cam_scales)
        self._predict(
            CAMClassifier.load_from_checkpoint(ckpt, map_location="cpu", cam_scales=scales),
            todo,
            CAMWriter(out),
        )
        return out

    def make_seeds(self) -> Path:
        """Write ``workdir/seeds/<id>.png`` from the CAMs (and the saliency PNGs, when given)."""
        from sal_lightning.losses.seeds import seeds_from_cams

        settings, out, cam_dir = self.settings, self.workdir / "seeds", self.workdir / "cams"
        ids = read_split(resolve_voc_root(self.root), self.split)
        num_classes = len(root_classes(self.root))
        for image_id in tqdm(ids, desc="seeds", unit="img", disable=len(ids) < 200):
            target = out / f"{image_id}.png"
            if target.is_file():
                continue
            cams = torch.from_numpy(read_cams(cam_dir / f"{image_id}.npz", num_classes - 1))
            tags = (cams.flatten(1).amax(1) > 0).float()
            seeds = seeds_from_cams(
                cams[None],
                tags[None],
                self._saliency(image_id, cams.shape[1:]),
                fg_ratio=settings.fg_ratio,
                bg_saliency=settings.bg_saliency,
                bg_quantile=settings.bg_quantile,
            )
            write_label_png(target, seeds[0].numpy().astype(np.uint8), num_classes)
        return out

    def _saliency(self, image_id: str, shape: tuple[int, ...]) -> torch.Tensor | None:
        """The saliency of ``image_id`` as float ``[1, H, W]`` in [0, 1] (``None`` with
        ``background="cam"``)."""
        if self.settings.background == "cam":
            return None
        self.settings.check_saliency(self.saliency)
        assert self.saliency is not None  # checked
        path = Path(self.saliency) / f"{image_id}.png"
        gray = read_gray_png(path)
        if gray.shape != tuple(shape):
            raise ValueError(f"{path}: size {gray.shape} differs from its CAMs")
        return torch.tensor(gray, dtype=torch.float32)[None] / 255.0

    def train_proxy_net(self) -> Path:
        """Train ProxyNet on ``workdir/seeds``; returns ``workdir/proxynet.ckpt``."""
        from sal_lightning.data.datamodules import VOCSegmentationDataModule
        from sal_lightning.models.proxy import ProxyNet

        settings = self.settings
        seed_everything(settings.seed)  # the initial weights too
        model = ProxyNet(
            **model_classes(self.root),
            **settings.network("proxy"),
            balanced_seed_loss=settings.balanced_seed_loss,
            expand_weight=settings.expand_weight,
            constrain_weight=settings.constrain_weight,
            grow=settings.grow,
            lr=settings.proxy_lr,
            test_scales=tuple(settings.test_scales),
            crf=settings.crf,
            crf_processes=settings.crf_processes,
        )
        data = VOCSegmentationDataModule(
            str(self.root),
            train_split=self.split,
            proxies=str(self.workdir / "seeds"),
            crop_size=settings.proxy_crop_size,
            batch_size=self._batch("proxy_batch_size"),
            num_workers=settings.num_workers,
        )
        return self._fit(model, data, settings.proxy_steps, "proxynet.ckpt")

    def predict_proxies(self, checkpoint: PathLike | None = None, with_tags: bool | None = None) -> Path:
        """Write ``workdir/proxies/<id>.png`` (multi-scale, CRF) for the ids of the split that
        have none yet, with the ProxyNet of ``checkpoint`` (default ``workdir/proxynet.ckpt``).

        ``with_tags``: restrict the proxies to the image tags (``None``: the configuration's
        ``predict_with_tags``); ``False`` is the network on its own, as for the paper's P1 row on val.
        """
        from sal_lightning.callbacks.writers import SegmentationPredictionWriter
        from sal_lightning.models.proxy import ProxyNet

        out = self.workdir / "proxies"
        todo = self._todo(out, ".png")
        if todo is None:
            return out
        ckpt = Path(checkpoint) if checkpoint is not None else self.workdir / "proxynet.ckpt"
        if not ckpt.is_file():
            raise FileNotFoundError(f"{ckpt}: ProxyNet checkpoint not found (run the 'train' sub-step first)")
        settings = self.settings
        model = ProxyNet.load_from_checkpoint(
            ckpt,
            map_location="cpu",
            test_scales=tuple(settings.test_scales),
            crf=settings.crf,
            crf_processes=settings.crf_processes,
            predict_with_tags=settings.predict_with_tags if with_tags is None else with_tags,
        )
        self._predict(model, todo, SegmentationPredictionWriter(out))
        return out

    def run(self, step: SubStep) -> Path:
        """Run one sub-step by name (:data:`STEPS`)."""
        methods = {"cam": self.train_cam, "cams": self.extract_cams, "seeds": self.make_seeds}
        methods |= {"train": self.train_proxy_net, "predict": self.predict_proxies}
        return methods[step]()
