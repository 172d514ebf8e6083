"""Calibrated weights files: batch-norm statistics estimated from batches, checked by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sal_lightning.nn import build_deeplab
from sal_lightning.nn.calibrate import calibrate_batch_norm, write_calibrated_backbone

NAME, BUILD = "deeplabv2_resnet18", {"num_classes": 5, "encoder_depth": 3}


def test_statistics_are_the_averages_over_the_batches_and_the_file_loads(tmp_path: Path) -> None:
    torch.manual_seed(0)
    batches = [torch.randn(2, 3, 40, 48) * 2 + 1 for _ in range(3)]
    path = write_calibrated_backbone(NAME, tmp_path / "r18.pth", batches, **BUILD)
    network = build_deeplab(NAME, encoder_weights=path, **BUILD)
    bn = network.encoder.bn1  # type: ignore[union-attr]
    # independently: the first batch norm sees conv1's output; momentum None averages the batches
    conv = network.encoder.conv1  # type: ignore[union-attr]
    with torch.no_grad():
        outputs = [conv(x) for x in batches]
    mean = torch.stack([o.mean((0, 2, 3)) for o in outputs]).mean(0)
    var = torch.stack([o.var((0, 2, 3), unbiased=True) for o in outputs]).mean(0)
    torch.testing.assert_close(bn.running_mean, mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bn.running_var, var, rtol=1e-4, atol=1e-5)
    assert network.frozen_bn and not bn.training and bn.momentum == 0.1  # modes and momentum kept

    # the features of the frozen network on such inputs are normalised, not blown up
    default = build_deeplab(NAME, **BUILD).eval()
    with torch.no_grad():
        calibrated_std = network.eval().extract_features(batches[0]).std()
        default_std = default.extract_features(batches[0]).std()
    assert calibrated_std < default_std / 2, (calibrated_std, default_std)


def test_a_network_without_batch_norm_needs_no_batches(tmp_path: Path) -> None:
    network = build_deeplab("vgg16_largefov", num_classes=3)
    assert calibrate_batch_norm(network, []) == 0
    with pytest.raises(ValueError, match="at least one batch"):
        calibrate_batch_norm(build_deeplab(NAME, **BUILD), [])
