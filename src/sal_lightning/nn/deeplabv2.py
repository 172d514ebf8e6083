"""DeepLab v2 ("DeepLab-ASPP", Chen et al., TPAMI 2018): the network of SAL-Net-ResNet101.

The paper builds SAL-Net-ResNet101 "on DeepLab-ASPP [47] and ResNet101"; that is DeepLab v2:

- a ResNet whose conv4 and conv5 stages (``layer3``, ``layer4``) trade their stride for dilation
  2 and 4 in every block, so the features sit at output stride 8 (a 321 x 321 crop gives
  41 x 41 cells, cell ``(i, j)`` centred on pixel ``(8i, 8j)``);
- four parallel 3x3 classifiers on the last feature map, dilated 6, 12, 18 and 24, straight to the
  K classes (weights N(0, 0.01^2), biases 0); their logits are summed. No image pooling, no 1x1
  branch, no batch norm and no dropout in the head;
- the backbone's batch norm frozen when weights are loaded: statistics and affine parameters stay
  those of the initial weights (the Caffe model's ``use_global_stats`` and ``lr_mult: 0``), since
  batches of 7-10 crops are too small to estimate them. Without weights there are no statistics to
  keep: frozen, a random ResNet-101's batch norm is the identity and its residual stream grows block
  after block (features ~1e4 at initialisation, a non-finite loss by the second step), so
  :func:`~sal_lightning.nn.build_deeplab` freezes it only when ``encoder_weights`` is given
  (``freeze_bn=None``).

smp's DeepLabV3 (``deeplabv3_<encoder>``: rates 12/24/36 at stride 8, an image-pooling branch, a
batch-normalised 256-channel ASPP and a 1x1 classifier) is a different network, kept as an option.

Two trunks:

- ``deeplabv2_caffe_resnet101`` (:class:`CaffeDeepLabV2`): the DeepLab authors' MSRA / Caffe
  ResNet-101 (:mod:`sal_lightning.nn.caffe_resnet`), whose converted weights
  (``deeplabv1_resnet101-coco.pth`` and the trained ``deeplabv2_resnet101_msc-*.pth`` of
  ``kazuto1011/deeplab-pytorch``) load by name; it reads Caffe's BGR 0-255 input, converted inside
  the network from the library's normalised RGB batches;
- ``deeplabv2_<smp encoder>`` (:class:`DeepLabV2`), below.

The smp trunk is segmentation-models-pytorch's encoder (``smp.encoders.get_encoder`` with output
stride 8: dilation in every block of the dilated stages, as DeepLab v2), so the ImageNet weights
come through smp's hub names or a local file like every other backbone (``build_deeplab``). smp's
ResNets are torchvision's (stride in the 3x3 convolution of a bottleneck, "ResNet v1.5"); the
Caffe ResNet-101 of DeepLab v2 strides in the first 1x1. See ``docs/fidelity.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from sal_lightning.nn.caffe_resnet import CaffeResNet
from sal_lightning.nn.deeplab import DeepLab
from sal_lightning.nn.smp_deeplab import drop_unused_resnet_stages

#: DeepLab v2's ASPP rates (ASPP-L, the model of its Table 5 and of SAL-Net)
ASPP_V2_RATES: tuple[int, ...] = (6, 12, 18, 24)


class DeepLabV2(DeepLab):
    """Dilated ResNet (or any smp encoder) + four summed dilated 3x3 classifiers (DeepLab v2).

    ``features: [B, F, ceil(H/s), ceil(W/s)]`` (F = 2048 for ResNet-101) ``-> logits [B, K, ...]``.
    ``backbone_module()`` is the encoder (1x lr); the head is ``aspp`` (new layers, 10x / 20x).

    Args:
        encoder_name: smp encoder; ``"resnet101"`` is the paper's.
        num_classes: K.
        output_stride: 8 (DeepLab v2) or 16 (only conv5 dilated).
        encoder_weights: ``None`` or an smp hub name such as ``"imagenet"`` (downloads).
        encoder_depth: encoder stages used (3..5, 5 in DeepLab v2); fewer is a cheaper trunk for CPUs.
        atrous_rates: one 3x3 classifier per rate, logits summed (6, 12, 18, 24).
        freeze_bn: keep the backbone's batch norm in eval mode with its parameters frozen
            (``requires_grad=False``), also under ``train()`` (DeepLab v2 does), see
            :meth:`~sal_lightning.nn.DeepLab.freeze_backbone_bn`.
        pad_mode: see :class:`~sal_lightning.nn.DeepLab` (ResNets need no padding: any side ``n``
            gives ``ceil(n / s)`` cells).
    """

    def __init__(
        self,
        encoder_name: str = "resnet101",
        num_classes: int = 21,
        output_stride: int = 8,
        encoder_weights: str | None = None,
        encoder_depth: int = 5,
        atrous_rates: Sequence[int] = ASPP_V2_RATES,
        freeze_bn: bool = True,
        pad_mode: str = "constant",
    ) -> None:
        import segmentation_models_pytorch as smp
        from segmentation_models_pytorch.encoders.resnet import ResNetEncoder

        if output_stride not in (8, 16):
            raise ValueError(f"output_stride: expected 8 (DeepLab v2) or 16, got {output_stride}")
        if encoder_name not in smp.encoders.get_encoder_names() and not encoder_name.startswith("tu-"):
            raise ValueError(
                f"encoder_name: {encoder_name!r} is not a segmentation-models-pytorch encoder "
                f"(e.g. resnet101, resnet18)"
            )
        rates = _check_rates(atrous_rates)
        encoder = smp.encoders.get_encoder(
            encoder_name,
            in_channels=3,
            depth=encoder_depth,
            weights=encoder_weights,
            output_stride=output_stride,
        )
        stride = int(encoder.output_stride)
        super().__init__(
            num_classes=num_classes,
            output_stride=stride,
            feature_channels=int(encoder.out_channels[-1]),
            pad_multiple=1 if isinstance(encoder, ResNetEncoder) else stride,
            pad_mode=pad_mode,
        )
        self.encoder_name = encoder_name
        self.rates = rates
        self.encoder = encoder
        drop_unused_resnet_stages(self.encoder, encoder_depth)
        self.aspp = nn.ModuleList(aspp_v2_branches(self.feature_channels, num_classes, rates))
        if freeze_bn:
            self.freeze_backbone_bn()

    def extract_features(self, x: Tensor) -> Tensor:
        """``x: [B, 3, H, W] -> [B, F, ceil(H/s), ceil(W/s)]``, the last encoder stage."""
        return self.encoder(x)[-1]

    def classify(self, features: Tensor) -> Tensor:
        """``features: [B, F, h, w] -> [B, K, h, w]``, the sum of the rate branches' logits."""
        return sum_branches(list(self.aspp), features)

    def backbone_module(self) -> nn.Module:
        return self.encoder


class CaffeDeepLabV2(DeepLab):
    """DeepLab v2 on the MSRA / Caffe ResNet-101: ``trunk``
    (:class:`~sal_lightning.nn.caffe_resnet.CaffeResNet`) and ``aspp.c0`` .. ``aspp.c3``, the layout
    of ``kazuto1011/deeplab-pytorch``'s ``DeepLabV2``.

    ``features: [B, 2048, ceil(H/s), ceil(W/s)] -> logits [B, K, ...]``. Batches are the library's
    normalised RGB; :attr:`weights_space` ``"bgr_caffe"`` converts them to Caffe's BGR 0-255 minus
    the mean inside the network (:meth:`~sal_lightning.nn.DeepLab.set_input_space` changes it).

    Args:
        num_classes: K.
        output_stride: 8 (DeepLab v2) or 16.
        atrous_rates: one 3x3 classifier per rate, logits summed (6, 12, 18, 24).
        freeze_bn: keep the trunk's batch norm in eval mode with frozen parameters.
        pad_mode: see :class:`~sal_lightning.nn.DeepLab` (no padding is needed).
    """

    weights_space = "bgr_caffe"

    def __init__(
        self,
        num_classes: int = 21,
        output_stride: int = 8,
        atrous_rates: Sequence[int] = ASPP_V2_RATES,
        freeze_bn: bool = True,
        pad_mode: str = "constant",
    ) -> None:
        rates = _check_rates(atrous_rates)
        trunk = CaffeResNet(output_stride=output_stride)
        super().__init__(
            num_classes=num_classes,
            output_stride=output_stride,
            feature_channels=trunk.out_channels,
            pad_multiple=1,
            pad_mode=pad_mode,
        )
        self.rates = rates
        self.trunk = trunk
        branches = aspp_v2_branches(self.feature_channels, num_classes, rates)
        self.aspp = nn.ModuleDict({f"c{k}": conv for k, conv in enumerate(branches)})
        if freeze_bn:
            self.freeze_backbone_bn()

    def extract_features(self, x: Tensor) -> Tensor:
        """``x: [B, 3, H, W]`` (Caffe space) ``-> [B, 2048, ceil(H/s), ceil(W/s)]``."""
        return self.trunk(x)

    def classify(self, features: Tensor) -> Tensor:
        """``features: [B, 2048, h, w] -> [B, K, h, w]``, the sum of the rate branches' logits."""
        return sum_branches(list(self.aspp.values()), features)

    def backbone_module(self) -> nn.Module:
        return self.trunk


def _check_rates(atrous_rates: Sequence[int]) -> tuple[int, ...]:
    rates = tuple(int(r) for r in atrous_rates)
    if not rates or any(r < 1 for r in rates):
        raise ValueError(f"atrous_rates: expected one or more dilation rates >= 1, got {rates}")
    return rates


def aspp_v2_branches(in_channels: int, num_classes: int, rates: Sequence[int]) -> list[nn.Conv2d]:
    """DeepLab v2's classifiers: one 3x3 convolution per rate, weights N(0, 0.01^2), biases 0."""
    convs = [nn.Conv2d(in_channels, num_classes, 3, padding=r, dilation=r) for r in rates]
    for conv in convs:
        nn.init.normal_(conv.weight, std=0.01)
        nn.init.zeros_(conv.bias)  # type: ignore[arg-type]
    return convs


def sum_branches(branches: Sequence[nn.Module], features: Tensor) -> Tensor:
    """``features: [B, F, h, w] -> [B, K, h, w]``: the sum of every branch's output."""
    out = branches[0](features)
    for branch in branches[1:]:
        out = out + branch(features)
    return out
