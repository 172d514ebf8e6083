"""On a CUDA device (``nox -s gpu``; skipped elsewhere): the paper's DeepLab v2 in bf16 autocast."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sal_lightning import SALSegmenter

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _batch(device: str, size: int = 65) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    batch = {
        "image": torch.randn(2, 3, size, size, generator=gen),
        "mask": torch.randint(0, 21, (2, size, size), generator=gen),
        "tags": (torch.rand(2, 20, generator=gen) < 0.2).float(),
        "weight": torch.tensor([1.0, 0.0]),
    }
    return {k: v.to(device) for k, v in batch.items()}


def test_p5_training_step_in_bf16_keeps_frozen_batch_norm() -> None:
    torch.manual_seed(0)
    model = SALSegmenter(backbone="deeplabv2_resnet18").cuda().train()
    norms = [m for m in model.net.backbone_module().modules() if isinstance(m, nn.BatchNorm2d)]
    stats = [m.running_mean.clone() for m in norms]
    optimizer = torch.optim.SGD(model.parameter_groups(), lr=1e-3, momentum=0.9)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        losses = model.losses(_batch("cuda"))
    assert all(torch.isfinite(v) for v in losses.values())
    losses["loss"].backward()
    optimizer.step()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(torch.equal(m.running_mean, s) for m, s in zip(norms, stats, strict=True))


@torch.no_grad()
def test_cuda_logits_match_the_cpu_and_bf16_stays_close() -> None:
    torch.manual_seed(0)
    model = SALSegmenter(backbone="deeplabv2_resnet18").eval()
    image = _batch("cpu")["image"]
    cpu = model.segment(image)
    model = model.cuda()
    gpu = model.segment(image.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu, rtol=1e-3, atol=1e-3)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        half = model.segment(image.cuda()).float().cpu()
    assert torch.isfinite(half).all() and float((half - cpu).norm() / cpu.norm()) < 0.1
