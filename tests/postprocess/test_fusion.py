"""Multi-scale + flip fusion with toy forwards whose answers are known."""

from __future__ import annotations

import pytest
import torch

from sal_lightning.postprocess import multiscale_flip_probs, scaled_size

MIX = torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.8, -1.0], [-0.7, 0.1, 2.0], [0.0, 0.0, 0.0]])  # K=4 x C=3


def pixelwise(x: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution: commutes with mirroring."""
    return torch.einsum("kc,bchw->bkhw", MIX, x)


def ramp(width: int) -> torch.Tensor:
    """A left-to-right ramp on class 0 only: ``[1, 4, 1, W]``."""
    r = torch.zeros(1, 4, 1, width)
    r[0, 0, 0] = torch.linspace(-3.0, 3.0, width)
    return r


def asymmetric(x: torch.Tensor) -> torch.Tensor:
    """Pixelwise logits plus a position-dependent term: not mirror-equivariant."""
    return pixelwise(x) + ramp(x.shape[-1])


def test_mirror_equivariant_forward_gives_the_single_view_result() -> None:
    image = torch.randn(2, 3, 9, 13)
    expected = pixelwise(image).softmax(1)
    torch.testing.assert_close(multiscale_flip_probs(pixelwise, image, scales=(1.0,), flip=True), expected)
    torch.testing.assert_close(multiscale_flip_probs(pixelwise, image, scales=(1.0,), flip=False), expected)


def test_flip_is_undone() -> None:
    image = torch.randn(2, 3, 9, 13)
    direct = (pixelwise(image) + ramp(13)).softmax(1)
    mirrored_back = (pixelwise(image) + ramp(13).flip(-1)).softmax(1)  # forward(flip(x)), flipped back
    fused = multiscale_flip_probs(asymmetric, image, scales=(1.0,), flip=True)
    torch.testing.assert_close(fused, (direct + mirrored_back) / 2)
    maxed = multiscale_flip_probs(asymmetric, image, scales=(1.0,), flip=True, fuse="max")
    top = torch.maximum(direct, mirrored_back)
    torch.testing.assert_close(maxed, top / top.sum(1, keepdim=True))


def test_constant_image_is_scale_invariant() -> None:
    image = torch.randn(2, 3, 1, 1).expand(2, 3, 20, 30).contiguous()  # resizing it is exact
    fused = multiscale_flip_probs(pixelwise, image, scales=(0.5, 0.75, 1.0, 1.5))
    torch.testing.assert_close(fused, pixelwise(image).softmax(1))


def test_scales_sizes_and_fusion_rules() -> None:
    """A forward whose (spatially constant) answer depends on its input size: one class per scale."""
    seen: list[tuple[int, ...]] = []
    sizes = [(10, 15), (15, 23), (20, 30)]  # 20 x 30 at 0.5, 0.75 (22.5 rounds up), 1.0

    def by_size(x: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(x.shape))
        logits = torch.zeros(x.shape[0], 3, *x.shape[-2:])
        logits[:, sizes.index((x.shape[-2], x.shape[-1]))] = 2.0
        return logits

    image = torch.randn(1, 3, 20, 30)
    fused = multiscale_flip_probs(by_size, image, flip=True)
    assert seen == [(2, 3, *size) for size in sizes]  # image and mirror in one call
    one_hot = torch.eye(3) * 2.0
    per_scale = one_hot.softmax(1)  # row s: the probabilities at scale s
    expected_mean = per_scale.mean(0)
    torch.testing.assert_close(fused, expected_mean.view(1, 3, 1, 1).expand(1, 3, 20, 30))
    maxed = multiscale_flip_probs(by_size, image, flip=False, fuse="max")
    top = per_scale.max(0).values
    torch.testing.assert_close(maxed, (top / top.sum()).view(1, 3, 1, 1).expand(1, 3, 20, 30))
    assert scaled_size(20, 30, 0.75) == (15, 23) and scaled_size(3, 3, 0.1) == (1, 1)


def test_bad_arguments() -> None:
    image = torch.randn(1, 3, 8, 8)
    with pytest.raises(ValueError, match="fuse"):
        multiscale_flip_probs(pixelwise, image, fuse="median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scales"):
        multiscale_flip_probs(pixelwise, image, scales=(0.0, 1.0))
    with pytest.raises(ValueError, match="image: expected a tensor"):
        multiscale_flip_probs(pixelwise, image[0])
    with pytest.raises(ValueError, match="forward output at scale 0.5"):
        multiscale_flip_probs(lambda x: pixelwise(x)[..., :-1], image)
