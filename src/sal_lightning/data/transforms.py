"""DeepLab-style joint image/mask transforms (albumentations 2.x) and a padding collate.

Training: random scale U(0.5, 1.5), pad to the crop size (image with the mean colour, mask with
255), random crop, horizontal flip, normalisation. Evaluation: normalisation only (whole images);
:func:`pad_collate` pads a batch of different sizes (image with 0 = the mean after normalisation,
mask with 255) and keeps each sample's original ``size`` so predictions can be cropped back.

A saliency map travels as a fourth image channel, so it gets the image's geometry, bilinear
resampling and padding with 0 (not salient).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

# albumentations asks PyPI for a newer release when imported (a request per process, and a wait on
# offline compute nodes); a library's import should not, unless the user asked for it
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from sal_lightning.data.voc import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD  # noqa: E402


class SegmentationTransform:
    """Joint transform of an image, its label map and optionally a saliency map.

    Called as ``transform(image, mask, saliency=None)`` with image uint8 [H, W, 3], mask uint8 [H, W]
    (0..C, 255) and saliency uint8 [H, W]; returns ``(image float [3, h, w] normalised, mask long
    [h, w], saliency float [h, w] in 0..1 or None)``.

    Args:
        train: random scale / pad / crop / flip when True; normalisation only when False.
        crop_size: training crop side (321 in DeepLab and the paper).
        scale_range: (low, high) of the random scale factor.
        hflip: random horizontal flip with probability 0.5 (training only).
        mean, std: per-channel normalisation in 0..1 units (ImageNet's by default).
    """

    def __init__(
        self,
        train: bool,
        crop_size: int = 321,
        scale_range: tuple[float, float] = (0.5, 1.5),
        hflip: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        if crop_size < 1:
            raise ValueError(f"crop_size must be >= 1, got {crop_size}")
        low, high = float(scale_range[0]), float(scale_range[1])
        if not 0 < low <= high:
            raise ValueError(f"scale_range must be (low, high) with 0 < low <= high, got {scale_range}")
        self.train = train
        self.crop_size = crop_size
        self.scale_range = (low, high)
        self.hflip = hflip
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self._pipelines = {3: self._build(3), 4: self._build(4)}
        self._seeded_pid: int | None = None

    def _seed_for_this_process(self) -> None:
        """Seed the random draws from torch once per process.

        albumentations seeds its generators when the pipeline is built; forked DataLoader workers
        would all inherit that one state (the same crops in every worker, and in every epoch when
        workers are not persistent). ``torch.initial_seed()`` differs per worker and per epoch and
        follows ``seed_everything``, so each process reseeds from it on its first call.
        """
        pid = os.getpid()
        if self._seeded_pid != pid:
            seed = torch.initial_seed() % 2**32
            for pipeline in self._pipelines.values():
                pipeline.set_random_seed(seed)
            self._seeded_pid = pid

    def _build(self, channels: int) -> A.Compose:
        mean, std = list(self.mean), list(self.std)
        if channels == 4:  # saliency channel: scaled to 0..1, padded with 0
            mean, std = [*mean, 0.0], [*std, 1.0]
        steps: list[Any] = []
        if self.train:
            low, high = self.scale_range
            fill = tuple(255.0 * m for m in mean)
            steps += [
                A.RandomScale(
                    scale_limit=(low - 1.0, high - 1.0),
                    interpolation=cv2.INTER_LINEAR,
                    mask_interpolation=cv2.INTER_NEAREST_EXACT,  # pixel-centre aligned like INTER_LINEAR
                    p=1.0,
                ),
                A.PadIfNeeded(
                    min_height=self.crop_size,
                    min_width=self.crop_size,
                    position="top_left",
                    border_mode=cv2.BORDER_CONSTANT,
                    fill=fill,
                    fill_mask=IGNORE_INDEX,
                ),
                A.RandomCrop(height=self.crop_size, width=self.crop_size),
            ]
            if self.hflip:
                steps.append(A.HorizontalFlip(p=0.5))
        steps.append(A.Normalize(mean=tuple(mean), std=tuple(std), max_pixel_value=255.0))
        return A.Compose(steps)

    def __call__(
        self, image: np.ndarray, mask: np.ndarray, saliency: np.ndarray | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        self._seed_for_this_process()
        if saliency is not None:
            image = np.concatenate([image, saliency[..., None]], axis=2)
        out = self._pipelines[image.shape[2]](image=image, mask=mask)
        x = torch.from_numpy(np.ascontiguousarray(out["image"].transpose(2, 0, 1)))
        y = torch.from_numpy(np.asarray(out["mask"]).astype(np.int64))  # a copy: writable, C order
        if saliency is not None:
            return x[:3], y, x[3]
        return x, y, None

    def __repr__(self) -> str:
        mode = (
            f"train, crop={self.crop_size}, scale={self.scale_range}, hflip={self.hflip}"
            if self.train
            else "eval"
        )
        return f"SegmentationTransform({mode})"


def train_transform(
    crop_size: int = 321, scale_range: tuple[float, float] = (0.5, 1.5), hflip: bool = True
) -> SegmentationTransform:
    """DeepLab training augmentation: scale, pad (mean / 255), crop ``crop_size``, flip, normalise."""
    return SegmentationTransform(True, crop_size=crop_size, scale_range=scale_range, hflip=hflip)


def eval_transform() -> SegmentationTransform:
    """Normalisation only (whole images)."""
    return SegmentationTransform(False)


def pad_collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Collate samples of different sizes into one batch, padding at the bottom/right.

    Returns ``image`` float [B, 3, H, W] (padding 0 = the mean colour after normalisation), ``mask``
    long [B, H, W] (padding 255), ``tags`` float [B, C], ``weight`` float [B], ``id`` list[str], and
    when present ``size`` long [B, 2] (each sample's original (H, W)), ``saliency`` float [B, H, W]
    (padding 0) and any other tensor field stacked as is.
    """
    if not samples:
        raise ValueError("pad_collate: empty batch")
    height = max(int(s["image"].shape[-2]) for s in samples)
    width = max(int(s["image"].shape[-1]) for s in samples)
    batch: dict[str, Any] = {}
    pads = {"image": 0.0, "mask": IGNORE_INDEX, "saliency": 0.0}
    same_size = all(tuple(s["image"].shape[-2:]) == (height, width) for s in samples)
    for key, value in samples[0].items():
        if key in pads and same_size:  # training crops: nothing to pad
            batch[key] = torch.stack([s[key] for s in samples])
        elif key in pads:
            out = torch.full((len(samples), *value.shape[:-2], height, width), pads[key], dtype=value.dtype)
            for i, sample in enumerate(samples):
                h, w = sample[key].shape[-2:]
                out[i, ..., :h, :w] = sample[key]
            batch[key] = out
        elif key == "size":
            batch[key] = torch.tensor([list(s[key]) for s in samples], dtype=torch.long)
        elif isinstance(value, torch.Tensor):
            batch[key] = torch.stack([s[key] for s in samples])
        elif isinstance(value, (int, float)):
            batch[key] = torch.tensor([s[key] for s in samples])
        else:
            batch[key] = [s[key] for s in samples]
    return batch
