"""Dense CRF with the real pydensecrf: cleaning, edges, distributions, the process pool, errors."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest

from sal_lightning.postprocess import (
    DEEPLAB_TEST_CRF,
    SEC_TRAIN_CRF,
    CRFPool,
    CRFSettings,
    binary_crf,
    dense_crf,
    dense_crf_batch,
)

COLOURS = np.array([[30, 60, 160], [220, 200, 40], [40, 180, 60]])


def _scene(seed: int, labels: int = 2, height: int = 40, width: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Vertical colour stripes (one per label) with mild noise, and the true label map."""
    rng = np.random.default_rng(seed)
    truth = (np.arange(width)[None, :] * labels // width).repeat(height, 0)
    image = np.clip(COLOURS[truth] + rng.normal(0, 8, (height, width, 3)), 0, 255).astype(np.uint8)
    return image, truth


def _salt_and_pepper(truth: np.ndarray, labels: int, seed: int, rate: float = 0.3) -> np.ndarray:
    """Probabilities 0.6 on a wrong label at ``rate`` of the pixels, on the true label elsewhere."""
    rng = np.random.default_rng(seed)
    wrong = (truth + rng.integers(1, labels, truth.shape)) % labels
    noisy = np.where(rng.random(truth.shape) < rate, wrong, truth)
    probs = np.full((labels, *truth.shape), 0.4 / (labels - 1), dtype=np.float32)
    np.put_along_axis(probs, noisy[None], 0.6, axis=0)
    return probs


@pytest.mark.parametrize("labels", [2, 3])
def test_crf_cleans_a_noisy_unary(labels: int) -> None:
    image, truth = _scene(0, labels)
    probs = _salt_and_pepper(truth, labels, seed=1)
    unary_accuracy = (probs.argmax(0) == truth).mean()
    q = dense_crf(image, probs)
    assert q.dtype == np.float32 and q.shape == probs.shape
    assert unary_accuracy < 0.75
    assert (q.argmax(0) == truth).mean() > 0.99
    assert q.min() >= 0.0
    np.testing.assert_allclose(q.sum(0), 1.0, atol=1e-5)


def test_read_only_inputs_are_accepted() -> None:
    # images decoded by PIL (read_image) are read-only; pydensecrf itself refuses such buffers
    image, truth = _scene(4)
    probs = _salt_and_pepper(truth, 2, seed=5)
    expected = dense_crf(image, probs)
    image.setflags(write=False)
    probs.setflags(write=False)
    np.testing.assert_array_equal(dense_crf(image, probs), expected)


def test_appearance_kernel_puts_the_boundary_on_the_colour_edge() -> None:
    height, width, edge = 40, 64, 24
    truth = (np.arange(width) >= edge).astype(int)[None].repeat(height, 0)
    image = COLOURS[truth].astype(np.uint8)
    probs = np.full((2, height, width), 0.5, dtype=np.float32)  # no opinion on columns 16..47
    probs[:, :, :16] = np.array([0.9, 0.1])[:, None, None]
    probs[:, :, 48:] = np.array([0.1, 0.9])[:, None, None]
    band = slice(16, 48)
    with_colour = dense_crf(image, probs).argmax(0)
    assert (with_colour[:, band] == truth[:, band]).all()
    smoothness_only = dense_crf(image, probs, CRFSettings(bilateral_compat=0.0)).argmax(0)
    assert (smoothness_only[:, band] == truth[:, band]).mean() < 0.9  # splits the band in the middle


def test_binary_crf_matches_the_two_label_crf() -> None:
    image, truth = _scene(2)
    probs = _salt_and_pepper(truth, 2, seed=3)
    fg = binary_crf(image, probs[1])
    assert fg.shape == truth.shape and fg.dtype == np.float32
    np.testing.assert_allclose(fg, dense_crf(image, np.stack([1 - probs[1], probs[1]]))[1], atol=1e-6)
    assert ((fg > 0.5) == truth).mean() > 0.99


def test_presets() -> None:
    expected = CRFSettings(
        gaussian_sxy=3.0, gaussian_compat=3.0, bilateral_sxy=80.0, bilateral_srgb=13.0, bilateral_compat=10.0
    )
    assert expected == DEEPLAB_TEST_CRF and DEEPLAB_TEST_CRF.iterations == 10
    assert SEC_TRAIN_CRF.gaussian_sxy == pytest.approx(3 / 12)
    assert SEC_TRAIN_CRF.bilateral_sxy == pytest.approx(80 / 12)
    sec = SEC_TRAIN_CRF
    assert (sec.bilateral_srgb, sec.gaussian_compat, sec.bilateral_compat) == (13, 3, 10)
    assert SEC_TRAIN_CRF.iterations == 10
    image, truth = _scene(4, height=12, width=15)  # SEC runs at the network's output resolution
    q = dense_crf(image, _salt_and_pepper(truth, 2, seed=5, rate=0.2), SEC_TRAIN_CRF)
    np.testing.assert_allclose(q.sum(0), 1.0, atol=1e-5)


def test_pool_equals_in_process_and_keeps_order() -> None:
    scenes = [_scene(seed, labels=3, height=20 + seed, width=30) for seed in range(5)]
    images = [image for image, _ in scenes]
    probs = [_salt_and_pepper(truth, 3, seed=10 + i) for i, (_, truth) in enumerate(scenes)]
    expected = [dense_crf(image, p) for image, p in zip(images, probs, strict=True)]
    with CRFPool(processes=2) as pool:
        futures = [pool.submit(image, p) for image, p in zip(images, probs, strict=True)]
        labels = pool.map(images, probs, output="labels")
        copy = pickle.loads(pickle.dumps(pool))  # e.g. a LightningModule holding the pool
        assert copy.processes == 2 and copy._executor is None
        results = [future.result() for future in futures]
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
    for got, want in zip(labels, expected, strict=True):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want.argmax(0))
    in_process = dense_crf_batch(images, probs, processes=0)
    for got, want in zip(in_process, expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_missing_pydensecrf_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pydensecrf", None)
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    image, truth = _scene(0, height=8, width=8)
    probs = _salt_and_pepper(truth, 2, seed=0)
    with pytest.raises(ImportError, match=r'pip install "sal-lightning\[crf\]"'):
        dense_crf(image, probs)
    with pytest.raises(ImportError, match=r'pip install "sal-lightning\[crf\]"'):
        CRFPool(processes=2).submit(image, probs)  # raised in the caller, before any worker starts


def test_bad_inputs() -> None:
    image, truth = _scene(0, height=8, width=10)
    probs = _salt_and_pepper(truth, 2, seed=0)
    with pytest.raises(ValueError, match=r"image: expected a uint8 array \[H, W, 3\]"):
        dense_crf(image.astype(np.float32), probs)
    with pytest.raises(ValueError, match=r"probs: expected \[K, 8, 10\]"):
        dense_crf(image, probs[:, :, :9])
    with pytest.raises(ValueError, match="at least 2 labels"):
        dense_crf(image, probs[:1])
    with pytest.raises(ValueError, match=r"probs: expected a float array"):
        dense_crf(image, truth)
    with pytest.raises(ValueError, match=r"foreground: expected a float array \[H, W\]"):
        binary_crf(image, probs)
    with pytest.raises(ValueError, match="CRFSettings.bilateral_srgb"):
        CRFSettings(bilateral_srgb=0.0)
    with pytest.raises(ValueError, match="CRFSettings.iterations"):
        CRFSettings(iterations=0)
    with pytest.raises(ValueError, match="processes"):
        CRFPool(processes=-1)
    with pytest.raises(ValueError, match="output"):
        CRFPool().submit(image, probs, output="argmax")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one array per image"):
        CRFPool().map([image], [probs, probs])


def test_pool_inside_a_lightning_predict_loop() -> None:
    """predict_step submits CRFs and returns at once; the results are collected after the loop."""
    import lightning as L
    import torch
    from torch.utils.data import DataLoader

    scenes = [_scene(seed, labels=2, height=16, width=24) for seed in range(4)]
    probs = [_salt_and_pepper(truth, 2, seed=20 + i) for i, (_, truth) in enumerate(scenes)]

    class CRFPredictor(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.pool = CRFPool(processes=2)

        def predict_step(self, batch: torch.Tensor) -> list:  # collated ints
            return [self.pool.submit(scenes[i][0], probs[i], output="labels") for i in batch.tolist()]

    model = CRFPredictor()
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    indices: list[int] = list(range(4))
    batches = trainer.predict(model, DataLoader(indices, batch_size=2))  # type: ignore[arg-type]
    assert batches is not None
    labels = [future.result() for batch in batches for future in batch]  # type: ignore[union-attr]
    model.pool.close()
    for (image, truth), got, p in zip(scenes, labels, probs, strict=True):
        np.testing.assert_array_equal(got, dense_crf(image, p).argmax(0))
        assert (got == truth).mean() > 0.95
