"""LightningDataModules for the VOC-format steps: CAM classification, segmentation, mask scoring.

Their ``__init__`` arguments are plain typed values, so LightningCLI configs name them directly::

    data:
      class_path: sal_lightning.data.VOCSegmentationDataModule
      init_args: {root: data/VOCdevkit/VOC2012, proxies: work/proxies, scores: work/scores.csv}

Every batch follows the batch contract (docs/design.md, "Batches"): ``image`` float [B, 3, H, W], ``mask``
long [B, H, W] (0..C, 255 ignored), ``tags`` float [B, C], ``weight`` float [B], ``id`` list[str], and
``size`` long [B, 2] (original sizes; whole-image batches are padded at the bottom/right, see
:func:`~sal_lightning.data.transforms.pad_collate`). ``C`` is the root's: the foreground classes of
its ``classes.txt`` (background first), VOC's 20 without one. The VOC DataModules say it as
``classes`` / ``num_classes``, and the trainer commands hand ``num_classes`` to the model (see
the ``sal-lightning fit`` family of commands), so a root's class file is never repeated in a config.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from sal_lightning.data.datasets import VOCDataset
from sal_lightning.data.layout import GT_DIRS, TagsSource, read_split, resolve_voc_root, root_classes
from sal_lightning.data.proxy_data import ProxyMaskDataset
from sal_lightning.data.scorer_data import ScorerSampleDataset, read_scorer_index, split_by_image
from sal_lightning.data.transforms import eval_transform, pad_collate, train_transform


def make_loader(
    dataset: Dataset[Any],
    batch_size: int,
    train: bool = False,
    num_workers: int = 0,
    collate: Callable[[list[Any]], Any] = pad_collate,
    drop_last: bool | None = None,
) -> DataLoader[Any]:
    """The library's DataLoader: shuffled when training (``train``), padded batches (``collate``),
    persistent workers, pinned memory on CUDA machines. ``drop_last``: drop a last partial batch
    (default: when training and there is at least one full batch)."""
    if drop_last is None:
        drop_last = train and len(dataset) >= batch_size  # type: ignore[arg-type]
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train,
        drop_last=drop_last,
        num_workers=num_workers,
        collate_fn=collate,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=num_workers > 0,
    )


class _LoaderModule(pl.LightningDataModule):
    """The four dataloaders of a DataModule whose ``setup`` fills ``*_dataset``."""

    batch_size: int
    eval_batch_size: int
    num_workers: int
    train_dataset: Dataset[Any] | None = None
    val_dataset: Dataset[Any] | None = None
    test_dataset: Dataset[Any] | None = None
    predict_dataset: Dataset[Any] | None = None

    def _loader(self, dataset: Dataset[Any] | None, stage: str, train: bool = False) -> DataLoader[Any]:
        if dataset is None:
            raise RuntimeError(
                f"{type(self).__name__}: call setup({stage!r}) before asking for its dataloader"
            )
        batch_size = self.batch_size if train else self.eval_batch_size
        return make_loader(dataset, batch_size, train, self.num_workers)

    def train_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.train_dataset, "fit", train=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.val_dataset, "validate")

    def test_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.test_dataset, "test")

    def predict_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.predict_dataset, "predict")


class _VOCDataModule(_LoaderModule):
    """What the VOC DataModules share: the root and its splits, augmentation, loaders, tags and
    downloads (the arguments are documented on :class:`VOCSegmentationDataModule`)."""

    def __init__(
        self,
        root: str,
        train_split: str = "train_aug",
        val_split: str = "val",
        test_split: str | None = None,
        predict_split: str = "val",
        crop_size: int = 321,
        scale_range: tuple[float, float] = (0.5, 1.5),
        hflip: bool = True,
        batch_size: int = 7,
        eval_batch_size: int = 1,
        num_workers: int = 4,
        saliency: str | None = None,
        tags_source: TagsSource = "auto",
        cls_labels: str | None = None,
        sbd_dir: str | None = None,
        gt_dirs: tuple[str, ...] = GT_DIRS,
        download: bool = False,
        voc_url: str | None = None,
        voc_md5: str | None = None,
        aug_url: str | None = None,
        aug_sha256: str | None = None,
        check_sizes: bool = True,
    ) -> None:
        super().__init__()
        if batch_size < 1 or eval_batch_size < 1:
            raise ValueError(
                f"batch_size and eval_batch_size must be >= 1, got {batch_size}, {eval_batch_size}"
            )
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self.root = root
        self.train_split, self.val_split = train_split, val_split
        self.test_split, self.predict_split = test_split, predict_split
        self.crop_size = crop_size
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.hflip = hflip
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.saliency = saliency
        self.tags_source: TagsSource = tags_source
        self.cls_labels, self.sbd_dir, self.gt_dirs = cls_labels, sbd_dir, tuple(gt_dirs)
        self.download = download
        self.download_options = {
            "voc_url": voc_url,
            "voc_md5": voc_md5,
            "aug_url": aug_url,
            "aug_sha256": aug_sha256,
        }
        self.check_sizes = check_sizes
        train_transform(crop_size, self.scale_range, hflip)  # validate the augmentation arguments now

    def prepare_data(self) -> None:
        """With ``download=True``: fetch VOC2012 trainval and SegmentationClassAug into ``root`` (once,
        verified, resumable) and write ``train_aug.txt`` when it is missing. Runs on one process."""
        if self.download:
            from sal_lightning.data.download import download

            opts = self.download_options
            download(
                self.root, opts["voc_url"], opts["voc_md5"], opts["aug_url"], aug_sha256=opts["aug_sha256"]
            )

    def _dataset(self, split: str, train: bool, **options: Any) -> VOCDataset:
        transform = (
            train_transform(self.crop_size, self.scale_range, self.hflip) if train else eval_transform()
        )
        return VOCDataset(
            self.root,
            split,
            transform=transform,
            saliency=self.saliency,
            gt_dirs=self.gt_dirs,
            tags_source=self.tags_source,
            cls_labels=self.cls_labels,
            sbd_dir=self.sbd_dir,
            check_sizes=self.check_sizes,
            **options,
        )

    @property
    def voc_root(self) -> Path:
        """The resolved VOC root (the folder holding ``JPEGImages/``)."""
        return resolve_voc_root(self.root)

    @property
    def classes(self) -> tuple[str, ...]:
        """The root's class list, background first: its ``classes.txt``, else VOC's 21 names
        (read when asked, so a root that ``download`` is still to fetch is not read early)."""
        return (
            root_classes(self.root)
            if self.download and not Path(self.root).exists()
            else (root_classes(self.voc_root))
        )

    @property
    def num_classes(self) -> int:
        """K, the segmentation classes with background: ``len(classes)`` (21 for VOC, 81 for COCO)."""
        return len(self.classes)


class VOCSegmentationDataModule(_VOCDataModule):
    """Segmentation on a VOC-format root: training on proxies (or ground truth), evaluation on ground truth.

    Training samples are random crops (DeepLab augmentation); validation, test and predict samples are
    whole images in padded batches. With ``scores`` the per-image ``weight`` comes from its
    ``weight`` column, and images of weight 0 are left out of the training list (hard selection
    draws only the selected images, so a fixed ``max_steps`` spends every update on them; soft
    weights reach the loss through ``batch["weight"]``). ``strong_ids`` (a list file) marks images
    trained on their ground truth with weight 1, the paper's semi-supervised setting.

    Args:
        root: VOC root (``VOCdevkit/VOC2012``, a ``VOCdevkit`` parent, or the ``download`` target).
        proxies: folder of proxy label PNGs for training (default: ground truth).
        scores: ``scores.csv`` with a ``weight`` column for the training ids.
        strong_ids: list file of ids trained on their ground truth with weight 1.
        predict_masks: load ground-truth masks for predict samples (else all 255; no masks needed).

    Other Parameters:
        train_split, val_split: split names (``train``, ``val``, ``train_aug``, ``test``) or list files.
        test_split: split of ``trainer.test`` (default: ``val_split``).
        predict_split: split of ``trainer.predict`` (e.g. ``train_aug`` to write proxies).
        crop_size, scale_range, hflip: training augmentation.
        batch_size: training batch (the paper uses 7); eval_batch_size: whole-image batches.
        num_workers: DataLoader worker processes.
        saliency: folder of saliency PNGs added to every sample as ``saliency`` [H, W] in 0..1.
        tags_source, cls_labels, sbd_dir: where tags come from (``auto``: XML, cls_labels.npy, SBD, mask).
        gt_dirs: ground-truth folders searched in order.
        download: ``prepare_data`` downloads VOC2012 + SegmentationClassAug into ``root`` (then
            ``root/VOCdevkit/VOC2012``), writes ``train_aug.txt``; verified, resumable, done once.
        voc_url, voc_md5: mirror of the VOC2012 trainval tar and its MD5 (default: the official ones).
        aug_url, aug_sha256: SegmentationClassAug.zip location and an optional SHA-256 to pin it.
        check_sizes: compare image and mask sizes from file headers when datasets are built.
    """

    def __init__(
        self,
        root: str,
        proxies: str | None = None,
        scores: str | None = None,
        strong_ids: str | None = None,
        predict_masks: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        self.proxies = proxies
        self.scores = scores
        self.strong_ids = strong_ids
        self.predict_masks = predict_masks
        self.save_hyperparameters()

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets of ``stage`` (``fit``, ``validate``, ``test``, ``predict``; None: all)."""
        if stage in (None, "fit") and self.train_dataset is None:
            self.train_dataset = self._dataset(
                self.train_split,
                train=True,
                proxies=self.proxies,
                scores=self.scores,
                strong_ids=self.strong_ids,
                skip_zero_weight=self.scores is not None,
            )
        if stage in (None, "fit", "validate") and self.val_dataset is None:
            self.val_dataset = self._dataset(self.val_split, train=False)
        if stage in (None, "test") and self.test_dataset is None:
            self.test_dataset = self._dataset(self.test_split or self.val_split, train=False)
        if stage in (None, "predict") and self.predict_dataset is None:
            self.predict_dataset = self._dataset(
                self.predict_split, train=False, use_masks=self.predict_masks
            )


class VOCClassificationDataModule(_VOCDataModule):
    """Images and tags for the CAM classifier of step 1; masks are all 255 unless ``masks=True``.

    Training samples are augmented crops (scale / crop / flip) with their image tags; validation and
    predict samples are whole images (predict over ``train_aug`` gives the CAMs that seed the
    proxies). With ``masks=True`` the validation / predict samples carry their ground truth, to
    measure CAM or seed quality.

    Args:
        root: VOC root.
        masks: load ground-truth masks for validation, test and predict samples.
        predict_split: split of ``trainer.predict`` (the images whose CAMs seed the proxies).
        batch_size: training batch.
        kwargs: the other settings of :class:`VOCSegmentationDataModule` (splits, augmentation,
            loaders, tags, downloads).
    """

    def __init__(
        self,
        root: str,
        masks: bool = False,
        predict_split: str = "train_aug",
        batch_size: int = 8,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, predict_split=predict_split, batch_size=batch_size, **kwargs)
        self.masks = masks
        self.save_hyperparameters()

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets of ``stage`` (``fit``, ``validate``, ``test``, ``predict``; None: all)."""
        if stage in (None, "fit") and self.train_dataset is None:
            self.train_dataset = self._dataset(self.train_split, train=True, use_masks=False)
        if stage in (None, "fit", "validate") and self.val_dataset is None:
            self.val_dataset = self._dataset(self.val_split, train=False, use_masks=self.masks)
        if stage in (None, "test") and self.test_dataset is None:
            self.test_dataset = self._dataset(
                self.test_split or self.val_split, train=False, use_masks=self.masks
            )
        if stage in (None, "predict") and self.predict_dataset is None:
            self.predict_dataset = self._dataset(self.predict_split, train=False, use_masks=self.masks)


class MaskScorerDataModule(_LoaderModule):
    """(image, binary mask) -> target quality samples for the mask scorer (fine scoring, step 3).

    Training / validation read a sample folder written by
    :func:`~sal_lightning.data.scorer_data.write_scorer_samples` (the scorer training-set builder's
    output), split by source image with ``val_fraction``. Prediction scores the proxies: the images
    of ``predict_split`` under ``root`` with the foreground of their ``proxies`` PNG. Batches:
    ``image`` float [B, 3, S, S], ``mask`` long [B, S, S] (0/1), ``target`` float [B] (train / val),
    ``weight`` float [B], ``id`` list[str].

    Args:
        samples: sample folder (``samples.csv`` + ``<sample_id>.jpg/.png``); needed for fit / validate.
        root, predict_split, proxies: VOC root, split and proxy folder scored by ``trainer.predict``.
        input_size: network input side S (256 in the paper).
        val_fraction, seed: share of source images held out for validation, and the split's seed.
        hflip: random horizontal flips of training samples.
        batch_size: training batch (the paper's scorer: 8).
        eval_batch_size, num_workers: DataLoader settings.
    """

    def __init__(
        self,
        samples: str | None = None,
        root: str | None = None,
        predict_split: str = "train_aug",
        proxies: str | None = None,
        input_size: int = 256,
        val_fraction: float = 0.1,
        seed: int = 0,
        hflip: bool = True,
        batch_size: int = 8,
        eval_batch_size: int = 16,
        num_workers: int = 4,
    ) -> None:
        super().__init__()
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self.save_hyperparameters()  # the settings, as ``self.hparams``
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets of ``stage`` (``fit``, ``validate``, ``predict``; None: those available)."""
        hp: Any = self.hparams
        if stage in (None, "fit", "validate") and hp.samples is not None and self.val_dataset is None:
            rows = read_scorer_index(hp.samples)
            train_ids, val_ids = split_by_image(rows, hp.val_fraction, hp.seed)
            if not train_ids:
                raise ValueError(f"{hp.samples}: no training samples after the val_fraction split")
            self.train_dataset = ScorerSampleDataset(hp.samples, hp.input_size, hp.hflip, train_ids)
            self.val_dataset = ScorerSampleDataset(hp.samples, hp.input_size, False, val_ids or train_ids)
        elif stage in ("fit", "validate") and hp.samples is None:
            raise ValueError("MaskScorerDataModule: samples is needed to fit or validate")
        if stage in (None, "predict") and self.predict_dataset is None:
            if hp.root is None or hp.proxies is None:
                if stage == "predict":
                    raise ValueError("MaskScorerDataModule: root and proxies are needed to predict")
                return
            voc = resolve_voc_root(hp.root)
            ids = read_split(voc, hp.predict_split)
            self.predict_dataset = ProxyMaskDataset(voc, ids, hp.proxies, hp.input_size)
