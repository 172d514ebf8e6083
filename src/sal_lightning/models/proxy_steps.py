"""Step 1 of SAL-Net as functions: tags -> CAMs -> seeds -> ProxyNet -> proxy annotations.

Each function does one sub-step in a work folder and can be called on its own (the ``sal-lightning
proxies`` command and the pipeline call them)::

    workdir/
      cam.ckpt            CAMClassifier weights                      train_cam()
      cams/<id>.npz       tagged classes' CAMs (see models.cam)      extract_cams()
      seeds/<id>.png      seeds: 0 bg, 1..20, 255 unlabelled         make_seeds()
      proxynet.ckpt       ProxyNet weights                           train_proxy_net()
      proxies/<id>.png    proxy annotations G_i                      predict_proxies()
      proxies.json        seed and proxy quality vs ground truth     run_proxies()

Per-image sub-steps skip the ids whose file exists (an interrupted run resumes); every file is
written atomically. ``trainer_kwargs`` go to every ``lightning.Trainer`` (``accelerator``,
``devices``, ``strategy``, ``logger``...), so the predict loops shard across GPUs under DDP.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from tqdm import tqdm

from sal_lightning._atomic import atomic_write_text
from sal_lightning.callbacks import SegmentationPredictionWriter
from sal_lightning.data.datamodules import VOCClassificationDataModule, VOCSegmentationDataModule
from sal_lightning.data.io import read_gray_png, read_label_png, write_id_list, write_label_png
from sal_lightning.data.layout import GT_DIRS, find_gt_mask, read_split, resolve_voc_root
from sal_lightning.data.voc import IGNORE_INDEX, NUM_CLASSES, VOC_CLASSES
from sal_lightning.losses import seeds_from_cams
from sal_lightning.models.cam import CAMClassifier, CAMWriter, read_cams
from sal_lightning.models.metrics import confusion_matrix_metric, iou_from_confusion, mean_iou
from sal_lightning.models.proxy import ProxyNet

PathLike = str | os.PathLike[str]


@dataclass
class ProxyConfig:
    """Settings of step 1. The networks are the paper's SAL-Net-ResNet101 step 1 (preset
    ``paper-resnet101``): the VGG16 CAM network of Sec. III-A (VGG16 conv layers, conv6/conv7 of
    1024 channels, global average pooling, a linear classifier) and DSRG on DeepLab v2 ResNet-101
    (the ProxyNet). The training settings, which the paper leaves to SEC / DSRG, follow those papers
    (IRN for the CAM schedule).

    Data: ``train_split`` (ids to label), ``saliency_dir`` (grayscale PNGs for background seeds;
    ``None``: the lowest-CAM pixels), ``num_workers`` (DataLoader workers), ``seed``.
    CAM classifier: ``cam_*`` (backbone, its kwargs, output stride, weights, conv6/conv7 width
    (``None``: none), learning rate, steps, batch size, crop, predict scales). Seeds: ``fg_ratio``
    (CAM > ratio x max), ``bg_saliency`` (saliency below it is background), ``bg_quantile`` (share
    of lowest-CAM pixels without saliency).
    ProxyNet: ``proxy_*`` and the loss switches of :class:`~sal_lightning.models.proxy.ProxyNet`;
    ``test_scales`` / ``crf`` for the proxies; ``crf_workers`` for training and prediction CRFs.
    """

    train_split: str = "train_aug"
    saliency_dir: str | None = None
    num_workers: int = 4
    seed: int = 0
    cam_backbone: str = "vgg16_aspp"
    cam_backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    cam_output_stride: int = 8
    cam_encoder_weights: str | None = None
    cam_conv7_channels: int | None = 1024
    cam_lr: float = 0.01
    cam_steps: int = 6000
    cam_batch_size: int = 16
    cam_crop_size: int = 448
    cam_scales: tuple[float, ...] = (1.0, 0.5, 1.5, 2.0)
    fg_ratio: float = 0.2
    bg_saliency: float = 0.06
    bg_quantile: float = 0.3
    proxy_backbone: str = "deeplabv2_resnet101"
    proxy_backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    proxy_output_stride: int = 8
    proxy_encoder_weights: str | None = None
    proxy_lr: float = 1e-3
    proxy_steps: int = 8000
    proxy_batch_size: int = 10
    proxy_crop_size: int = 321
    balanced_seed_loss: bool = True
    expand_weight: float = 1.0
    constrain_weight: float = 1.0
    grow: bool = True
    test_scales: tuple[float, ...] = (0.5, 0.75, 1.0)
    crf: bool = True
    crf_workers: int | None = None


#: named starting configurations: the paper's step 1 of SAL-Net-ResNet101 (``paper-resnet101``, also
#: called ``paper``) and of SAL-Net-VGG16 (``paper-vgg16``: DSRG on VGG16 DeepLab-ASPP), both with the
#: VGG16 CAM network, and a small from-scratch CPU run on the synthetic data (ResNet-18 trunks, 64 px
#: images; the figures in docs/proxies.md)
PRESETS: dict[str, ProxyConfig] = {
    "paper-resnet101": ProxyConfig(),
    "paper-vgg16": ProxyConfig(proxy_backbone="vgg16_aspp"),
    "paper": ProxyConfig(),
    "synthetic-cpu": ProxyConfig(
        train_split="train",
        num_workers=0,
        cam_backbone="deeplabv3_resnet18",
        cam_backbone_kwargs={"encoder_depth": 4},
        cam_output_stride=8,
        cam_conv7_channels=None,
        cam_lr=0.01,
        cam_steps=600,
        cam_batch_size=16,
        cam_crop_size=64,
        proxy_backbone="deeplabv3_resnet18",
        proxy_backbone_kwargs={"encoder_depth": 4, "decoder_channels": 64},
        proxy_lr=0.01,
        proxy_steps=600,
        proxy_batch_size=8,
        proxy_crop_size=65,
        test_scales=(0.75, 1.0, 1.25),
        crf_workers=0,
    ),
}


def _trainer(trainer_kwargs: Mapping[str, Any] | None, **defaults: Any) -> pl.Trainer:
    options: dict[str, Any] = {
        "logger": False,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "limit_val_batches": 0,
    }
    options.update(defaults)
    options.update(trainer_kwargs or {})
    return pl.Trainer(**options)


def _save_checkpoint(trainer: pl.Trainer, path: Path) -> Path:
    """Save the weights (and hyperparameters) atomically; every rank calls it, rank 0 writes."""
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    trainer.save_checkpoint(partial, weights_only=True)
    if trainer.is_global_zero:
        os.replace(partial, path)
    trainer.strategy.barrier("proxy-steps-checkpoint")
    return path


def _todo_split(workdir: Path, root: Path, split: str, out_dir: Path, suffix: str, name: str) -> str | None:
    """A list file of the split's ids without ``out_dir/<id><suffix>`` (None when all are done)."""
    ids = read_split(root, split)
    todo = [i for i in ids if not (out_dir / f"{i}{suffix}").is_file()]
    if not todo:
        return None
    path = workdir / f".{name}.todo.txt"
    write_id_list(path, todo)
    return str(path)


def _remove_todo(trainer: pl.Trainer, split: str) -> None:
    """Delete a :func:`_todo_split` list once every rank has finished predicting."""
    trainer.strategy.barrier("proxy-steps-todo")
    if trainer.is_global_zero:
        Path(split).unlink(missing_ok=True)


def train_cam(
    root: PathLike, workdir: PathLike, config: ProxyConfig, trainer_kwargs: Mapping[str, Any] | None = None
) -> Path:
    """Train the CAM classifier on the tags of ``config.train_split``; returns ``workdir/cam.ckpt``."""
    pl.seed_everything(config.seed, workers=True, verbose=False)
    model = CAMClassifier(
        backbone=config.cam_backbone,
        output_stride=config.cam_output_stride,
        encoder_weights=config.cam_encoder_weights,
        backbone_kwargs=dict(config.cam_backbone_kwargs),
        lr=config.cam_lr,
        cam_scales=tuple(config.cam_scales),
        conv7_channels=config.cam_conv7_channels,
    )
    data = VOCClassificationDataModule(
        str(root),
        train_split=config.train_split,
        crop_size=config.cam_crop_size,
        batch_size=config.cam_batch_size,
        num_workers=config.num_workers,
    )
    trainer = _trainer(trainer_kwargs, max_steps=config.cam_steps)
    trainer.fit(model, datamodule=data)
    return _save_checkpoint(trainer, Path(workdir) / "cam.ckpt")


def extract_cams(
    root: PathLike,
    workdir: PathLike,
    config: ProxyConfig,
    checkpoint: PathLike | None = None,
    trainer_kwargs: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``workdir/cams/<id>.npz`` for every id of ``config.train_split`` that has none yet."""
    workdir, voc = Path(workdir), resolve_voc_root(root)
    out = workdir / "cams"
    split = _todo_split(workdir, voc, config.train_split, out, ".npz", "cams")
    if split is None:
        return out
    ckpt = Path(checkpoint) if checkpoint is not None else workdir / "cam.ckpt"
    if not ckpt.is_file():
        raise FileNotFoundError(f"{ckpt}: CAM classifier checkpoint not found (run train_cam first)")
    model = CAMClassifier.load_from_checkpoint(ckpt, map_location="cpu", cam_scales=tuple(config.cam_scales))
    data = VOCClassificationDataModule(str(root), predict_split=split, num_workers=config.num_workers)
    trainer = _trainer(trainer_kwargs, callbacks=[CAMWriter(out)])
    trainer.predict(model, datamodule=data, return_predictions=False)
    _remove_todo(trainer, split)
    return out


def make_seeds(root: PathLike, workdir: PathLike, config: ProxyConfig) -> Path:
    """Write ``workdir/seeds/<id>.png`` from the CAMs (and saliency maps, if configured)."""
    workdir, voc = Path(workdir), resolve_voc_root(root)
    out = workdir / "seeds"
    ids = read_split(voc, config.train_split)
    cam_dir = workdir / "cams"
    saliency_dir = Path(config.saliency_dir) if config.saliency_dir is not None else None
    for image_id in tqdm(ids, desc="seeds", unit="img", disable=len(ids) < 200):
        target = out / f"{image_id}.png"
        if target.is_file():
            continue
        cams = torch.from_numpy(read_cams(cam_dir / f"{image_id}.npz"))
        tags = (cams.flatten(1).amax(1) > 0).float()
        saliency = None
        if saliency_dir is not None:
            gray = read_gray_png(saliency_dir / f"{image_id}.png")
            if gray.shape != tuple(cams.shape[1:]):
                raise ValueError(f"{saliency_dir / image_id}.png: size {gray.shape} differs from its CAMs")
            saliency = torch.tensor(gray, dtype=torch.float32)[None] / 255.0
        seeds = seeds_from_cams(
            cams[None], tags[None], saliency, config.fg_ratio, config.bg_saliency, config.bg_quantile
        )
        write_label_png(target, seeds[0].numpy().astype(np.uint8))
    return out


def train_proxy_net(
    root: PathLike, workdir: PathLike, config: ProxyConfig, trainer_kwargs: Mapping[str, Any] | None = None
) -> Path:
    """Train ProxyNet on ``workdir/seeds``; returns ``workdir/proxynet.ckpt``."""
    workdir = Path(workdir)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    model = ProxyNet(
        backbone=config.proxy_backbone,
        output_stride=config.proxy_output_stride,
        encoder_weights=config.proxy_encoder_weights,
        backbone_kwargs=dict(config.proxy_backbone_kwargs),
        balanced_seed_loss=config.balanced_seed_loss,
        expand_weight=config.expand_weight,
        constrain_weight=config.constrain_weight,
        grow=config.grow,
        lr=config.proxy_lr,
        test_scales=tuple(config.test_scales),
        crf=config.crf,
        crf_workers=config.crf_workers,
    )
    data = VOCSegmentationDataModule(
        str(root),
        train_split=config.train_split,
        proxy_dir=str(workdir / "seeds"),
        crop_size=config.proxy_crop_size,
        batch_size=config.proxy_batch_size,
        num_workers=config.num_workers,
    )
    trainer = _trainer(trainer_kwargs, max_steps=config.proxy_steps)
    trainer.fit(model, datamodule=data)
    return _save_checkpoint(trainer, workdir / "proxynet.ckpt")


def predict_proxies(
    root: PathLike,
    workdir: PathLike,
    config: ProxyConfig,
    checkpoint: PathLike | None = None,
    trainer_kwargs: Mapping[str, Any] | None = None,
    with_tags: bool = True,
) -> Path:
    """Write ``workdir/proxies/<id>.png`` (multi-scale, tags, CRF) for the ids that have none yet.

    ``with_tags=False`` predicts without restricting to the image tags: the network on its own, as
    for the paper's P1 row on val (``config.train_split`` names the split to label).
    """
    workdir, voc = Path(workdir), resolve_voc_root(root)
    out = workdir / "proxies"
    split = _todo_split(workdir, voc, config.train_split, out, ".png", "proxies")
    if split is None:
        return out
    ckpt = Path(checkpoint) if checkpoint is not None else workdir / "proxynet.ckpt"
    if not ckpt.is_file():
        raise FileNotFoundError(f"{ckpt}: ProxyNet checkpoint not found (run train_proxy_net first)")
    model = ProxyNet.load_from_checkpoint(
        ckpt,
        map_location="cpu",
        test_scales=tuple(config.test_scales),
        crf=config.crf,
        crf_workers=config.crf_workers,
        predict_with_tags=with_tags,
    )
    data = VOCSegmentationDataModule(str(root), predict_split=split, num_workers=config.num_workers)
    trainer = _trainer(trainer_kwargs, callbacks=[SegmentationPredictionWriter(out)])
    trainer.predict(model, datamodule=data, return_predictions=False)
    _remove_todo(trainer, split)
    return out


@dataclass
class LabelQuality:
    """Label maps (seeds or proxies) against the ground truth.

    Attributes:
        miou: mean IoU over the classes present (unlabelled predictions count as misses).
        precision: share of the labelled predicted pixels that are right (on ground-truth pixels).
        coverage: share of the ground-truth pixels that got a label.
        images: images scored (with ground truth); missing: ids without a ground-truth mask.
        class_iou: class name -> IoU (NaN: class absent from both).
    """

    miou: float
    precision: float
    coverage: float
    images: int
    missing: int
    class_iou: dict[str, float]


def label_quality(
    label_dir: PathLike,
    root: PathLike,
    ids: Sequence[str],
    gt_dirs: Sequence[str] = GT_DIRS,
    num_classes: int = NUM_CLASSES,
    class_names: Sequence[str] = VOC_CLASSES,
) -> LabelQuality:
    """Score ``label_dir/<id>.png`` against the ground truth of ``root`` (ids without one are skipped).

    Predicted 255 (unlabelled) is an extra confusion column, so it lowers each class's IoU like a
    miss but never counts as a wrong class; ground-truth 255 pixels are left out.
    """
    voc, label_dir = resolve_voc_root(root), Path(label_dir)
    metric = confusion_matrix_metric(num_classes + 1, IGNORE_INDEX)  # column K: unlabelled
    images = missing = 0
    for image_id in tqdm(ids, desc="scoring", unit="img", disable=len(ids) < 200):
        gt_path = find_gt_mask(voc, image_id, gt_dirs)
        if gt_path is None:
            missing += 1
            continue
        pred = torch.from_numpy(read_label_png(label_dir / f"{image_id}.png").astype(np.int64))
        gt = torch.from_numpy(read_label_png(gt_path).astype(np.int64))
        if pred.shape != gt.shape:
            raise ValueError(f"{label_dir / image_id}.png: size {tuple(pred.shape)} differs from {gt_path}")
        metric.update(torch.where(pred == IGNORE_INDEX, num_classes, pred)[None], gt[None])
        images += 1
    square = metric.compute()  # [K + 1, K + 1], rows = truth (row K empty), columns = prediction
    iou = iou_from_confusion(square)[:num_classes]
    confusion = square[:num_classes]
    labelled = confusion[:, :num_classes]
    return LabelQuality(
        miou=float(mean_iou(iou)) if images else float("nan"),
        precision=float(labelled.trace() / labelled.sum().clamp_min(1)),
        coverage=float(labelled.sum() / confusion.sum().clamp_min(1)),
        images=images,
        missing=missing,
        class_iou=dict(zip(class_names, iou.tolist(), strict=True)),
    )


STEPS: tuple[str, ...] = ("cam", "cams", "seeds", "train", "predict")
#: what each sub-step writes, relative to the work folder
OUTPUTS: dict[str, str] = {
    "cam": "cam.ckpt",
    "cams": "cams",
    "seeds": "seeds",
    "train": "proxynet.ckpt",
    "predict": "proxies",
}


def run_proxies(
    root: PathLike,
    workdir: PathLike,
    config: ProxyConfig | None = None,
    trainer_kwargs: Mapping[str, Any] | None = None,
    steps: Sequence[str] = STEPS,
    resume: bool = False,
) -> dict[str, Any]:
    """Run the sub-steps ``steps`` of step 1 in order (cam, cams, seeds, train, predict).

    Without ``resume`` each requested sub-step starts from nothing (its output, see
    :data:`OUTPUTS`, is removed first). With ``resume`` a training sub-step whose checkpoint exists
    is skipped and the per-image sub-steps only do the ids without a file.
    Returns a report (also written to ``workdir/proxies.json``): the configuration, and the seed
    and proxy quality against the ground truth where it exists (:class:`LabelQuality` as dicts).
    """
    config = config if config is not None else ProxyConfig()
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"steps: unknown {unknown}, expected some of {list(STEPS)}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for step in STEPS:
        if step not in steps:
            continue
        output = workdir / OUTPUTS[step]
        if not resume:
            if output.is_dir():
                shutil.rmtree(output)
            else:
                output.unlink(missing_ok=True)
        elif output.suffix == ".ckpt" and output.is_file():
            continue
        if step == "cam":
            train_cam(root, workdir, config, trainer_kwargs)
        elif step == "cams":
            extract_cams(root, workdir, config, trainer_kwargs=trainer_kwargs)
        elif step == "seeds":
            make_seeds(root, workdir, config)
        elif step == "train":
            train_proxy_net(root, workdir, config, trainer_kwargs)
        else:
            predict_proxies(root, workdir, config, trainer_kwargs=trainer_kwargs)
    ids = read_split(resolve_voc_root(root), config.train_split)
    report: dict[str, Any] = {"config": asdict(config)}
    for name in ("seeds", "proxies"):
        folder = workdir / name
        if all((folder / f"{i}.png").is_file() for i in ids):
            report[name] = asdict(label_quality(folder, root, ids))
    atomic_write_text(workdir / "proxies.json", json.dumps(report, indent=2, default=str) + "\n")
    return report


def check_proxy_config(config: ProxyConfig) -> None:
    """Validate step 1's settings before any work (``ValueError`` naming the setting): sizes and
    step counts positive, and both networks buildable (on the meta device: no memory, no download)."""
    from sal_lightning.pipeline.steps import build_on_meta, check_at_least

    for name in (
        "cam_steps",
        "cam_batch_size",
        "cam_crop_size",
        "proxy_steps",
        "proxy_batch_size",
        "proxy_crop_size",
    ):
        check_at_least(name, getattr(config, name), 1)
    check_at_least("num_workers", config.num_workers, 0)
    cam = {
        "backbone": config.cam_backbone,
        "output_stride": config.cam_output_stride,
        "encoder_weights": config.cam_encoder_weights,
        "backbone_kwargs": dict(config.cam_backbone_kwargs),
    }
    build_on_meta(CAMClassifier, cam, "cam_backbone")
    proxy = {
        "backbone": config.proxy_backbone,
        "output_stride": config.proxy_output_stride,
        "encoder_weights": config.proxy_encoder_weights,
        "backbone_kwargs": dict(config.proxy_backbone_kwargs),
    }
    build_on_meta(ProxyNet, proxy, "proxy_backbone")
