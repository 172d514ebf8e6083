"""DeepLab segmentation backbones behind one interface: the :class:`DeepLab` base class.

:func:`~sal_lightning.nn.build_deeplab` returns a :class:`DeepLab`:

- ``"deeplabv2_<encoder>"``: DeepLab v2 (:mod:`sal_lightning.nn.deeplabv2`): dilated encoder at
  output stride 8, four summed 3x3 classifiers at rates 6/12/18/24, frozen backbone batch norm;
  ``"deeplabv2_resnet101"`` is the paper's SAL-Net-ResNet101 ("DeepLab-ASPP [47]").
- ``"deeplabv3_<encoder>"``: segmentation-models-pytorch's DeepLabV3
  (:mod:`sal_lightning.nn.smp_deeplab`: ASPP with image pooling and batch norm) with any of its
  encoders, e.g. ``"deeplabv3_resnet101"`` or ``"deeplabv3_resnet18"``; output stride 8 (16
  optional), dilated encoder. Not the paper's network: an option.
- ``"vgg16_largefov"`` and ``"vgg16_aspp"``: DeepLab on VGG16 (:mod:`sal_lightning.nn.vgg`), output
  stride 8 (SAL-Net-VGG16 uses the ASPP form).

``model(x)`` returns :class:`DeepLabOutput` ``(logits, low_res_logits, features)``: logits at the
input's resolution, the same logits at the output stride (the resolution SEC/DSRG losses work at)
and the last backbone feature map (what a classification branch such as
``HybridDilatedClassifier`` reads). Inputs of any size work: sides are padded at the bottom/right to
a multiple of what the encoder needs and the logits are cropped back.

The optimiser's two parameter sets are :meth:`DeepLab.backbone_parameters` (pretrainable, 1x lr)
and :meth:`DeepLab.head_parameters` (new layers, 10x lr); :func:`param_groups` turns them into
SGD groups as DeepLab and the SAL-Net release do (weights 10x, biases 20x, no decay on biases).

Weights files load with :func:`~sal_lightning.nn.weights.load_weights`. segmentation-models-pytorch is
imported only when an smp model is built (it takes seconds).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal, NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

from sal_lightning._checks import check_tensor
from sal_lightning.nn.input_space import IMAGENET_MEAN, IMAGENET_STD, InputSpace

PadMode = Literal["constant", "reflect", "replicate"]
_PAD_MODES = ("constant", "reflect", "replicate")


class DeepLabOutput(NamedTuple):
    """What :meth:`DeepLab.forward` returns.

    Attributes:
        logits: ``[B, K, H, W]`` float, at the input's resolution.
        low_res_logits: ``[B, K, h, w]`` float at the output stride ``s``: ``h = ceil(H / s)``,
            cell ``(i, j)`` centred on input pixel ``(s*i, s*j)`` (see :func:`upsample_logits`).
        features: ``[B, F, h, w]`` float, the last backbone feature map (``F = feature_channels``).
    """

    logits: Tensor
    low_res_logits: Tensor
    features: Tensor


class DeepLab(nn.Module):
    """A DeepLab network: backbone features at the output stride, a head to class logits, upsampling.

    Subclasses provide :meth:`extract_features`, :meth:`classify` and :meth:`backbone_module`;
    everything outside the backbone module counts as head.

    Attributes:
        num_classes: K.
        output_stride: s, input pixels per low-resolution cell.
        feature_channels: F, channels of ``DeepLabOutput.features``.
        pad_multiple: sides are padded up to a multiple of this before the backbone (1 = never).
        pad_mode: ``"constant"`` (zeros, i.e. the mean of a normalised image), ``"reflect"`` or
            ``"replicate"``.
        frozen_bn: whether :meth:`freeze_backbone_bn` was called.
        weights_space: the input space the trunk's weights expect (class attribute, see
            :mod:`sal_lightning.nn.input_space`); ``input_space`` converts batches into the space
            chosen by :meth:`set_input_space` (this one by default) before the backbone.
    """

    weights_space: str = "rgb_imagenet"

    def __init__(
        self,
        *,
        num_classes: int,
        output_stride: int,
        feature_channels: int,
        pad_multiple: int,
        pad_mode: str = "constant",
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes: expected a positive number of classes, got {num_classes}")
        if pad_mode not in _PAD_MODES:
            raise ValueError(f"pad_mode: expected one of {_PAD_MODES}, got {pad_mode!r}")
        self.num_classes = num_classes
        self.output_stride = output_stride
        self.feature_channels = feature_channels
        self.pad_multiple = pad_multiple
        self.pad_mode = pad_mode
        self.frozen_bn = False
        self.input_space = InputSpace(self.weights_space)

    def set_input_space(
        self,
        space: str | None = None,
        pixel_mean: Sequence[float] = IMAGENET_MEAN,
        pixel_std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        """Convert batches normalised with ``pixel_mean`` / ``pixel_std`` (RGB, 0..1) into ``space``
        (``"rgb_imagenet"`` or ``"bgr_caffe"``; ``None``: :attr:`weights_space`) before the backbone."""
        self.input_space = InputSpace(self.weights_space if space is None else space, pixel_mean, pixel_std)

    def extract_features(self, x: Tensor) -> Tensor:
        """``x: [B, 3, H', W']`` (already padded) ``-> [B, F, ceil(H'/s), ceil(W'/s)]``."""
        raise NotImplementedError

    def classify(self, features: Tensor) -> Tensor:
        """``features: [B, F, h, w] -> [B, K, h, w]`` logits."""
        raise NotImplementedError

    def backbone_module(self) -> nn.Module:
        """The pretrainable part (ImageNet encoder); the rest of the network is the head."""
        raise NotImplementedError

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the pretrainable backbone (base learning rate)."""
        return self.backbone_module().parameters()

    def freeze_backbone_bn(self) -> None:
        """Freeze the backbone's batch norm: statistics and affine parameters stay as loaded.

        Its parameters get ``requires_grad=False`` (so :func:`param_groups` leaves them out) and
        its modules stay in eval mode, also after ``train()`` (DeepLab v2's convention: batches of
        7-10 crops are too small to estimate batch statistics).
        """
        self.frozen_bn = True
        for module in _batch_norms(self.backbone_module()):
            module.requires_grad_(False)
            module.eval()

    def train(self, mode: bool = True) -> DeepLab:
        """``nn.Module.train``, except that a frozen backbone batch norm stays in eval mode."""
        super().train(mode)
        if self.frozen_bn:
            for module in _batch_norms(self.backbone_module()):
                module.eval()
        return self

    def head_parameters(self) -> Iterator[nn.Parameter]:
        """Every parameter outside the backbone (new layers, 10x learning rate)."""
        backbone = {id(p) for p in self.backbone_module().parameters()}
        return (p for p in self.parameters() if id(p) not in backbone)

    def backbone_features(self, x: Tensor) -> Tensor:
        """``x: [B, 3, H, W]`` float (normalised RGB image) ``-> [B, F, ceil(H'/s), ceil(W'/s)]``:
        converted to the trunk's input space, padded to ``pad_multiple`` (``H'``, ``W'``), then
        :meth:`extract_features`."""
        check_tensor(x, "x", "B 3 H W", "float")
        x = self.input_space(x)
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % self.pad_multiple, -width % self.pad_multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=self.pad_mode)
        return self.extract_features(x)

    def forward(self, x: Tensor) -> DeepLabOutput:
        """``x: [B, 3, H, W]`` float (normalised RGB image) ``->`` :class:`DeepLabOutput`."""
        check_tensor(x, "x", "B 3 H W", "float")
        height, width = x.shape[-2:]
        features = self.backbone_features(x)
        low = self.classify(features)
        return DeepLabOutput(upsample_logits(low, self.output_stride, (height, width)), low, features)


def _batch_norms(module: nn.Module) -> Iterator[nn.modules.batchnorm._BatchNorm]:
    return (m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))


def upsample_logits(low: Tensor, stride: int, size: tuple[int, int]) -> Tensor:
    """Bilinear upsampling of stride-``stride`` logits to ``size``, cell ``(i, j)`` on pixel ``(s*i, s*j)``.

    ``low: [B, K, h, w] -> [B, K, H, W]`` with ``H <= s*h``, ``W <= s*w``. This is DeepLab's geometry
    (Caffe ``Interp`` with ``zoom_factor = s``: ``h`` cells span ``s*(h-1)+1`` pixels, hence its
    321 = 8*40+1 crops); rows and columns past the last cell repeat it.
    """
    height, width = size
    h, w = low.shape[-2:]
    up = F.interpolate(
        low, size=((h - 1) * stride + 1, (w - 1) * stride + 1), mode="bilinear", align_corners=True
    )
    pad_h, pad_w = max(height - up.shape[-2], 0), max(width - up.shape[-1], 0)
    if pad_h or pad_w:
        up = F.pad(up, (0, pad_w, 0, pad_h), mode="replicate")
    return up[..., :height, :width]


def param_groups(
    backbone: Iterable[nn.Parameter],
    head: Iterable[nn.Parameter],
    lr: float,
    weight_decay: float,
    head_lr_mult: float = 10.0,
    head_bias_lr_mult: float = 20.0,
    bias_lr_mult: float = 1.0,
) -> list[dict[str, Any]]:
    """Optimiser parameter groups in the DeepLab / SAL-Net release style.

    Weights (parameters with 2+ dimensions) get ``weight_decay``; biases and normalisation
    parameters (1 dimension) get none. Learning rates: backbone weights ``lr``, backbone biases
    ``lr * bias_lr_mult``, head weights ``lr * head_lr_mult``, head biases ``lr * head_bias_lr_mult``.
    Parameters with ``requires_grad=False`` are left out, as are empty groups. Each group carries a
    ``"name"`` (``backbone_weight``, ``backbone_bias``, ``head_weight``, ``head_bias``).

    Example: ``SGD(param_groups(model.backbone_parameters(), chain(model.head_parameters(),
    branch.parameters()), lr=1e-3, weight_decay=5e-4), lr=1e-3, momentum=0.9)``.

    Raises ``ValueError`` when a parameter appears twice.
    """
    seen: set[int] = set()
    buckets: dict[str, list[nn.Parameter]] = {
        "backbone_weight": [],
        "backbone_bias": [],
        "head_weight": [],
        "head_bias": [],
    }
    for part, params in (("backbone", backbone), ("head", head)):
        for p in params:
            if id(p) in seen:
                raise ValueError(f"param_groups: a parameter of shape {tuple(p.shape)} is listed twice")
            seen.add(id(p))
            if p.requires_grad:
                buckets[f"{part}_{'weight' if p.dim() > 1 else 'bias'}"].append(p)
    settings = {
        "backbone_weight": (lr, weight_decay),
        "backbone_bias": (lr * bias_lr_mult, 0.0),
        "head_weight": (lr * head_lr_mult, weight_decay),
        "head_bias": (lr * head_bias_lr_mult, 0.0),
    }
    return [
        {"params": params, "lr": settings[name][0], "weight_decay": settings[name][1], "name": name}
        for name, params in buckets.items()
        if params
    ]
