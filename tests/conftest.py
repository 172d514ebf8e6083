"""Shared fixtures: a small synthetic VOC-format dataset and builders of tiny VOC folders."""

from __future__ import annotations

import os

# The tests' tensors are tiny: one intra-op thread per process is as fast, and it keeps the
# subprocess tests (two DDP ranks, the pipeline and demo commands) from fighting over the cores.
# On a shared 2-core machine torch's default of two threads made the suite several times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import shutil  # noqa: E402
from collections.abc import Callable
from pathlib import Path

import pytest  # noqa: E402
import torch  # noqa: E402

from sal_lightning.data.synthetic import make_synthetic_voc  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session")
def synthetic_voc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VOC root with 12 train / 6 val synthetic 64x64 images (seed 0), shared by the whole session.

    Read-only: tests that modify files use ``voc_copy`` or ``make_voc``. Layout: JPEGImages/,
    SegmentationClass/ (void band), SegmentationClassAug/, Annotations/, saliency/,
    ImageSets/Segmentation/{train,val,train_aug}.txt; ids ``synth_000000`` .. ``synth_000017``.
    """
    return make_synthetic_voc(tmp_path_factory.mktemp("synthetic_voc"), n_train=12, n_val=6, size=64, seed=0)


@pytest.fixture
def voc_copy(synthetic_voc: Path, tmp_path: Path) -> Path:
    """A writable copy of ``synthetic_voc`` in this test's temporary folder."""
    return Path(shutil.copytree(synthetic_voc, tmp_path / "voc"))


@pytest.fixture
def make_voc(tmp_path: Path) -> Callable[..., Path]:
    """Factory ``make_voc(n_train=4, n_val=2, size=32, seed=0, name="voc") -> Path`` of tiny VOC roots."""

    def build(n_train: int = 4, n_val: int = 2, size: int = 32, seed: int = 0, name: str = "voc") -> Path:
        return make_synthetic_voc(tmp_path / name, n_train=n_train, n_val=n_val, size=size, seed=seed)

    return build
