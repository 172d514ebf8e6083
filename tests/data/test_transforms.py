"""DeepLab-style transforms keep image and mask aligned; pad_collate pads and keeps sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sal_lightning.data.transforms import SegmentationTransform, eval_transform, pad_collate, train_transform
from sal_lightning.data.voc import IMAGENET_MEAN, IMAGENET_STD

COLOURS = np.array([[0, 0, 0], [230, 20, 20], [20, 230, 20], [20, 20, 230]], np.uint8)


def _scene(height: int = 90, width: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """An asymmetric label map (so a flip or shift of the mask alone shows) and its colour image."""
    labels = np.zeros((height, width), np.uint8)
    labels[10:50, 5:45] = 1  # left block
    labels[30:85, 70:110] = 2  # right block, lower
    labels[:8, :] = 3  # top band
    return COLOURS[labels], labels


def _denormalise(x: torch.Tensor) -> np.ndarray:
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return ((x * std + mean) * 255).permute(1, 2, 0).numpy()


def _agreement(image: torch.Tensor, mask: torch.Tensor) -> float:
    """Share of interior labelled pixels (all 8 neighbours share the label) whose colour is nearest to
    their label's colour; border pixels are left out (bilinear image vs nearest-neighbour mask)."""
    rgb = _denormalise(image)
    m = mask.numpy()
    padded = np.pad(m, 1, mode="edge")
    interior = np.ones_like(m, dtype=bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            interior &= padded[dy : dy + m.shape[0], dx : dx + m.shape[1]] == m
    interior &= m != 255
    nearest = np.argmin(((rgb[..., None, :] - COLOURS[None, None].astype(np.float32)) ** 2).sum(-1), axis=-1)
    return float((nearest[interior] == m[interior]).mean())


def test_train_transform_keeps_image_and_mask_aligned() -> None:
    image, labels = _scene()
    transform = train_transform(crop_size=64)
    for _ in range(30):
        x, y, s = transform(image, labels)
        assert x.shape == (3, 64, 64) and x.dtype == torch.float32
        assert y.shape == (64, 64) and y.dtype == torch.long and s is None
        assert _agreement(x, y) == 1.0  # pixel-centre aligned resampling: no half-pixel shift
        assert set(np.unique(y.numpy())) <= {0, 1, 2, 3, 255}


def test_agreement_catches_a_misaligned_mask() -> None:
    image, labels = _scene()
    x, y, _ = eval_transform()(image, labels)
    assert _agreement(x, y) == 1.0
    assert _agreement(x, torch.flip(y, dims=[1])) < 0.6
    assert _agreement(x, torch.roll(y, shifts=6, dims=1)) < 0.95


def test_flip_happens_and_moves_image_and_mask_together() -> None:
    image, labels = _scene()
    transform = SegmentationTransform(True, crop_size=120, scale_range=(1.0, 1.0))  # crop = whole width
    outcomes = set()
    for _ in range(20):
        x, y, _ = transform(image, labels)
        left_is_block1 = bool((y[20:40, 10:40] == 1).all())
        right_is_block1 = bool((y[20:40, 80:110] == 1).all())
        outcomes.add((left_is_block1, right_is_block1))
        assert _agreement(x, y) > 0.99
    assert outcomes == {(True, False), (False, True)}  # both orientations seen, always consistent


def test_scale_and_padding_values() -> None:
    image, labels = _scene(40, 40)
    x, y, _ = SegmentationTransform(True, crop_size=64, scale_range=(0.5, 0.5), hflip=False)(image, labels)
    # scaled to 20 x 20 at the top-left, padded with the mean colour (0 after normalisation) and 255
    assert (y[20:, :] == 255).all() and (y[:, 20:] == 255).all() and (y[:20, :20] != 255).all()
    assert torch.allclose(x[:, 20:, :], torch.zeros(1), atol=1e-2) and torch.allclose(
        x[:, :, 20:], torch.zeros(1), atol=1e-2
    )
    assert (y[:4, :20] == 3).all()  # the top band at half its height


def test_eval_transform_is_normalisation_only() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    labels = rng.integers(0, 21, (17, 23)).astype(np.uint8)
    saliency = rng.integers(0, 256, (17, 23), dtype=np.uint8)
    x, y, s = eval_transform()(image, labels, saliency)
    expected = (image / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    assert np.allclose(x.permute(1, 2, 0).numpy(), expected, atol=1e-5)
    assert torch.equal(y, torch.from_numpy(labels.astype(np.int64)))
    assert s is not None and torch.allclose(s, torch.from_numpy(saliency / 255.0).float(), atol=1e-6)


def test_saliency_follows_the_geometry() -> None:
    image, labels = _scene()
    saliency = np.where(labels == 2, 255, 0).astype(np.uint8)
    transform = SegmentationTransform(True, crop_size=100, scale_range=(0.7, 1.3))
    for _ in range(10):
        x, y, s = transform(image, labels, saliency)
        assert s is not None and s.shape == y.shape
        inside = (y == 2).numpy()
        assert (s.numpy()[inside] > 0.9).mean() > 0.9 and (s.numpy()[(y == 1).numpy()] < 0.1).all()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="scale_range"):
        SegmentationTransform(True, scale_range=(1.5, 0.5))
    with pytest.raises(ValueError, match="crop_size"):
        train_transform(crop_size=0)


def test_pad_collate_pads_and_keeps_sizes() -> None:
    samples = [
        {
            "image": torch.ones(3, h, w),
            "mask": torch.zeros(h, w, dtype=torch.long),
            "tags": torch.zeros(20),
            "weight": torch.tensor(0.5),
            "id": f"i{h}",
            "size": (h, w),
        }
        for h, w in ((4, 6), (5, 3))
    ]
    batch = pad_collate(samples)
    assert batch["image"].shape == (2, 3, 5, 6) and batch["mask"].shape == (2, 5, 6)
    assert batch["image"][0, :, 4:].abs().sum() == 0 and batch["image"][1, :, :, 3:].abs().sum() == 0
    assert (batch["mask"][0, 4:] == 255).all() and (batch["mask"][1, :, 3:] == 255).all()
    assert (batch["mask"][1, :, :3] == 0).all()
    assert batch["size"].tolist() == [[4, 6], [5, 3]] and batch["id"] == ["i4", "i5"]
    assert batch["weight"].tolist() == [0.5, 0.5] and batch["tags"].shape == (2, 20)
    with pytest.raises(ValueError, match="empty batch"):
        pad_collate([])


class _Repeat(torch.utils.data.Dataset):
    def __init__(self) -> None:
        self.image, self.labels = _scene()
        self.transform = train_transform(crop_size=48)

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(self.image, self.labels)[1]


def test_workers_and_seeds_draw_different_augmentations() -> None:
    """Forked workers do not repeat one another's crops; a torch seed makes the draws reproducible."""
    loader = torch.utils.data.DataLoader(_Repeat(), batch_size=1, num_workers=2)
    masks = [m[0] for m in loader]
    distinct = {m.numpy().tobytes() for m in masks}
    assert len(distinct) >= 6
    assert not torch.equal(masks[0], masks[1])  # worker 0's and worker 1's first samples
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        dataset = _Repeat()
        runs.append(torch.stack([dataset[i] for i in range(4)]))
    assert torch.equal(runs[0], runs[1])


def test_importing_the_transforms_asks_no_server_for_updates() -> None:
    """albumentations checks PyPI for a newer release at import unless told not to; the library
    tells it (a fresh process, where nothing else imported albumentations first)."""
    import subprocess
    import sys

    code = (
        "import os, urllib.request\n"
        "os.environ.pop('NO_ALBUMENTATIONS_UPDATE', None)\n"
        "requests = []\n"
        "urllib.request.OpenerDirector.open = lambda self, url, *a, **k: requests.append(url)\n"
        "import sal_lightning.data.transforms\n"
        "print(len(requests))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "0", done.stdout + done.stderr
