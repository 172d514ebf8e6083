"""DeepLab segmentation backbones behind one interface.

``build_deeplab(name, ...)`` returns a :class:`DeepLab`:

- ``"deeplabv2_<encoder>"``: DeepLab v2 (:mod:`sal_lightning.nn.deeplabv2`): dilated encoder at
  output stride 8, four summed 3x3 classifiers at rates 6/12/18/24, frozen backbone batch norm;
  ``"deeplabv2_resnet101"`` is the paper's SAL-Net-ResNet101 ("DeepLab-ASPP [47]").
- ``"deeplabv3_<encoder>"``: segmentation-models-pytorch's DeepLabV3 (ASPP with image pooling and
  batch norm) with any of its encoders, e.g. ``"deeplabv3_resnet101"`` or ``"deeplabv3_resnet18"``;
  output stride 8 (16 optional), dilated encoder. Not the paper's network: an option.
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

The module imports segmentation-models-pytorch only when an smp model is built (it takes seconds).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sal_lightning._checks import check_tensor

PadMode = Literal["constant", "reflect", "replicate"]
_PAD_MODES = ("constant", "reflect", "replicate")
_SMP_PREFIX = "deeplabv3_"
_V2_PREFIX = "deeplabv2_"
VGG_BACKBONES = ("vgg16_largefov", "vgg16_aspp")
#: file suffixes that mark ``encoder_weights`` as a local file rather than a hub name
_WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")
#: top-level keys of ImageNet classification checkpoints that a backbone load skips
_CLASSIFIER_KEYS = ("fc", "classifier", "head", "last_linear")


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
    """

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

    def forward(self, x: Tensor) -> DeepLabOutput:
        """``x: [B, 3, H, W]`` float (normalised image) ``->`` :class:`DeepLabOutput`."""
        check_tensor(x, "x", "B 3 H W", "float")
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % self.pad_multiple, -width % self.pad_multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=self.pad_mode)
        features = self.extract_features(x)
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


class SmpDeepLab(DeepLab):
    """segmentation-models-pytorch DeepLabV3 (encoder + ASPP + 1x1 classifier) as a :class:`DeepLab`.

    Submodule names match ``smp.DeepLabV3`` (``encoder``, ``decoder``, ``segmentation_head.0``), so
    state dicts of either load into the other. The low-resolution logits are those of
    ``smp.DeepLabV3`` on the padded input; the upsampling follows DeepLab's geometry
    (:func:`upsample_logits`) rather than smp's ``scale_factor`` upsampling, which stretches the
    map by ``(s*h - 1) / (s*(h - 1))``.

    Args:
        encoder_name: any smp encoder (``"resnet101"``, ``"resnet18"``, ``"tu-..."``).
        num_classes: K.
        output_stride: 8 or 16; the effective stride is ``min(output_stride, 2**encoder_depth)``.
        encoder_depth: encoder stages used (3..5); ResNet stages beyond it are removed so that
            every parameter takes part in the forward pass (DDP needs that).
        encoder_weights: ``None`` or an smp hub name such as ``"imagenet"`` (downloads).
        decoder_channels: ASPP width (256 in DeepLabV3).
        atrous_rates: the three ASPP rates; default (12, 24, 36) at stride 8, (6, 12, 18) at 16.
        dropout: dropout in the ASPP projection.
        pad_mode: see :class:`DeepLab`.
    """

    def __init__(
        self,
        encoder_name: str,
        num_classes: int = 21,
        output_stride: int = 8,
        encoder_depth: int = 5,
        encoder_weights: str | None = None,
        decoder_channels: int = 256,
        atrous_rates: Sequence[int] | None = None,
        dropout: float = 0.5,
        pad_mode: str = "constant",
    ) -> None:
        import segmentation_models_pytorch as smp

        if output_stride not in (8, 16):
            raise ValueError(f"output_stride: expected 8 or 16, got {output_stride}")
        if encoder_name not in smp.encoders.get_encoder_names() and not encoder_name.startswith("tu-"):
            raise ValueError(
                f"encoder_name: {encoder_name!r} is not a segmentation-models-pytorch encoder "
                f"(e.g. resnet18, resnet101, efficientnet-b0, tu-<timm model>)"
            )
        default_rates = (12, 24, 36) if output_stride == 8 else (6, 12, 18)
        rates = tuple(atrous_rates) if atrous_rates is not None else default_rates
        net = smp.DeepLabV3(
            encoder_name=encoder_name,
            encoder_depth=encoder_depth,
            encoder_weights=encoder_weights,
            encoder_output_stride=output_stride,  # type: ignore[arg-type]
            decoder_channels=decoder_channels,
            decoder_atrous_rates=rates,
            decoder_aspp_dropout=dropout,
            classes=num_classes,
        )
        stride = int(net.encoder.output_stride)
        super().__init__(
            num_classes=num_classes,
            output_stride=stride,
            feature_channels=int(net.encoder.out_channels[-1]),
            pad_multiple=stride,
            pad_mode=pad_mode,
        )
        self.encoder_name = encoder_name
        self.encoder = net.encoder
        drop_unused_resnet_stages(self.encoder, encoder_depth)
        self.decoder = net.decoder
        self.segmentation_head = nn.Sequential(net.segmentation_head[0])

    def extract_features(self, x: Tensor) -> Tensor:
        return self.encoder(x)[-1]

    def classify(self, features: Tensor) -> Tensor:
        return self.segmentation_head(self.decoder([features]))

    def backbone_module(self) -> nn.Module:
        return self.encoder


def drop_unused_resnet_stages(encoder: nn.Module, depth: int) -> None:
    """Delete ResNet stages an smp encoder of ``depth`` < 5 builds but never runs."""
    from segmentation_models_pytorch.encoders.resnet import ResNetEncoder

    if not isinstance(encoder, ResNetEncoder):
        return
    for stage in range(max(depth, 1), 5):  # layer{k} runs when depth >= k + 1
        if hasattr(encoder, f"layer{stage}"):
            delattr(encoder, f"layer{stage}")


def build_deeplab(
    name: str,
    num_classes: int = 21,
    output_stride: int = 8,
    encoder_weights: str | os.PathLike[str] | None = None,
    dropout: float = 0.5,
    *,
    encoder_depth: int = 5,
    decoder_channels: int = 256,
    atrous_rates: Sequence[int] | None = None,
    fc_channels: int = 1024,
    freeze_bn: bool | None = None,
    pad_mode: PadMode = "constant",
) -> DeepLab:
    """Build a DeepLab backbone by name.

    Args:
        name: ``"deeplabv2_<smp encoder>"`` (``"deeplabv2_resnet101"``: the paper's ResNet-101
            network), ``"deeplabv3_<smp encoder>"`` (e.g. ``"deeplabv3_resnet101"``),
            ``"vgg16_largefov"`` or ``"vgg16_aspp"`` (the paper's VGG16 network).
        num_classes: K (21 for VOC).
        output_stride: 8, or 16 for smp encoders (VGG16 DeepLab is always 8).
        encoder_weights: ``None`` (random init), a hub name (``"imagenet"``: smp's weights for smp
            encoders, torchvision's ImageNet VGG16 for the VGG trunk; both download), or a local
            file (``.pth``/``.pt``/``.bin``/``.ckpt``/``.safetensors``) holding the state dict of the
            backbone or of the whole network, see :func:`load_weights`.
        dropout: dropout in the head (ASPP projection for DeepLabV3, after fc6/fc7 for VGG); DeepLab
            v2's head has no dropout layer, so it does not apply to ``deeplabv2_*``.
        encoder_depth: smp encoder stages (3..5); smp encoders only.
        decoder_channels: DeepLabV3's ASPP width; ``deeplabv3_*`` only.
        atrous_rates: ASPP rates; DeepLabV3 default (12, 24, 36) at stride 8 / (6, 12, 18) at 16,
            DeepLab v2 and VGG ASPP (6, 12, 18, 24), VGG LargeFOV (12,).
        fc_channels: fc6/fc7 width of the VGG head (1024); VGG only.
        freeze_bn: backbone batch norm in eval mode with frozen parameters, also in ``train()``;
            ``None``: the network's own convention (on for DeepLab v2, off for DeepLabV3; VGG16
            has no batch norm).
        pad_mode: how inputs are padded to the encoder's multiple, see :class:`DeepLab`.
    """
    hub_name: str | None = None
    weights_file: Path | None = None
    if encoder_weights is not None:
        if _looks_like_path(encoder_weights):
            weights_file = Path(encoder_weights)
            if not weights_file.is_file():
                raise FileNotFoundError(f"encoder_weights: no such file {str(weights_file)!r}")
        else:
            hub_name = str(encoder_weights)

    model: DeepLab
    if name.startswith(_V2_PREFIX) and len(name) > len(_V2_PREFIX):
        if decoder_channels != 256 or fc_channels != 1024:
            raise ValueError(
                f"decoder_channels and fc_channels do not apply to {name}: DeepLab v2's head is four "
                f"3x3 classifiers (set atrous_rates to change it)"
            )
        from sal_lightning.nn.deeplabv2 import ASPP_V2_RATES, DeepLabV2

        model = DeepLabV2(
            name[len(_V2_PREFIX) :],
            num_classes=num_classes,
            output_stride=output_stride,
            encoder_weights=hub_name,
            encoder_depth=encoder_depth,
            atrous_rates=ASPP_V2_RATES if atrous_rates is None else atrous_rates,
            freeze_bn=True if freeze_bn is None else freeze_bn,
            pad_mode=pad_mode,
        )
    elif name in VGG_BACKBONES:
        if output_stride != 8:
            raise ValueError(f"output_stride: {name} has output stride 8, got {output_stride}")
        if encoder_depth != 5 or decoder_channels != 256:
            raise ValueError(f"encoder_depth and decoder_channels apply to smp encoders, not to {name}")
        if hub_name not in (None, "imagenet"):
            raise ValueError(f"encoder_weights: {name} knows the hub name 'imagenet' only, got {hub_name!r}")
        from sal_lightning.nn.vgg import ASPP_RATES, LARGEFOV_RATES, VGG16DeepLab

        default_rates = LARGEFOV_RATES if name == "vgg16_largefov" else ASPP_RATES
        vgg = VGG16DeepLab(
            num_classes=num_classes,
            rates=default_rates if atrous_rates is None else atrous_rates,
            fc_channels=fc_channels,
            dropout=dropout,
            pad_mode=pad_mode,
        )
        if hub_name is not None:
            vgg.load_imagenet_backbone()
        if freeze_bn:
            raise ValueError(f"freeze_bn: {name} has no batch norm to freeze")
        model = vgg
    elif name.startswith(_SMP_PREFIX) and len(name) > len(_SMP_PREFIX):
        if fc_channels != 1024:
            raise ValueError(f"fc_channels applies to the VGG16 heads, not to {name}")
        model = SmpDeepLab(
            name[len(_SMP_PREFIX) :],
            num_classes=num_classes,
            output_stride=output_stride,
            encoder_depth=encoder_depth,
            encoder_weights=hub_name,
            decoder_channels=decoder_channels,
            atrous_rates=atrous_rates,
            dropout=dropout,
            pad_mode=pad_mode,
        )
        if freeze_bn:
            model.freeze_backbone_bn()
    else:
        raise ValueError(
            f"name: expected 'deeplabv2_<smp encoder>' (e.g. 'deeplabv2_resnet101', the paper's), "
            f"'vgg16_aspp', 'vgg16_largefov' or 'deeplabv3_<smp encoder>', got {name!r}"
        )
    if weights_file is not None:
        load_weights(model, weights_file)
    return model


def _looks_like_path(value: str | os.PathLike[str]) -> bool:
    if isinstance(value, os.PathLike):
        return True
    return (
        any(sep in value for sep in ("/", os.sep))
        or value.lower().endswith(_WEIGHT_SUFFIXES)
        or os.path.isfile(value)
    )


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling refused or corrupt file
        raise ValueError(f"encoder_weights: cannot read a state dict from {str(path)!r}: {error}") from error
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):  # Lightning checkpoint
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(f"encoder_weights: {str(path)!r} holds no state dict (name -> tensor)")
    return obj


def _find_prefix(wanted: Iterable[str], available: dict[str, Tensor]) -> str | None:
    """The key prefix under which ``available`` holds every key of ``wanted``, or None."""
    wanted = list(wanted)
    anchor = max(wanted, key=len)
    candidates = {k[: len(k) - len(anchor)] for k in available if k == anchor or k.endswith("." + anchor)}
    for prefix in sorted(candidates, key=len):
        if all(prefix + k in available for k in wanted):
            return prefix
    return None


def load_weights(model: DeepLab, path: str | os.PathLike[str]) -> Literal["model", "backbone"]:
    """Load a local state dict into ``model`` (the whole network) or into its backbone.

    The file (``torch.save`` of a state dict, a Lightning checkpoint's ``state_dict``, or
    ``.safetensors``) may hold the whole network (e.g. a saved :class:`DeepLab` or an
    ``smp.DeepLabV3`` with the same configuration), or only the backbone (e.g. torchvision's
    ImageNet ResNet / VGG16 files, ``model.encoder.state_dict()``). Keys may sit under a common
    prefix (``"model."``, ``"features."``...). Every key of the target must be present with the
    right shape, else ``ValueError`` names the missing and mismatched keys. Extra keys under the
    prefix are skipped with a warning, classifier keys (``fc.``, ``classifier.``...) of an ImageNet
    backbone silently. Returns which part was loaded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"encoder_weights: no such file {str(path)!r}")
    state = _read_state_dict(path)
    targets: list[tuple[Literal["model", "backbone"], nn.Module]] = [
        ("model", model),
        ("backbone", model.backbone_module()),
    ]
    for part, module in targets:
        own = module.state_dict()
        prefix = _find_prefix(own, state)
        if prefix is None:
            continue
        mismatched = [
            f"{k}: file {tuple(state[prefix + k].shape)} vs model {tuple(v.shape)}"
            for k, v in own.items()
            if state[prefix + k].shape != v.shape
        ]
        if mismatched:
            raise ValueError(
                f"encoder_weights: {str(path)!r} does not fit the {part}: shape mismatch in "
                f"{len(mismatched)} tensors, e.g. {mismatched[:5]} (to reuse only the backbone of a "
                f"network with other classes, save model.backbone_module().state_dict())"
            )
        extra = [
            k
            for k in state
            if k.startswith(prefix)
            and k[len(prefix) :] not in own
            and not (part == "backbone" and k[len(prefix) :].split(".")[0] in _CLASSIFIER_KEYS)
        ]
        if extra:
            warnings.warn(
                f"encoder_weights: {len(extra)} tensors of {str(path)!r} are not in the {part} and were "
                f"skipped, e.g. {extra[:5]}",
                stacklevel=2,
            )
        module.load_state_dict({k: state[prefix + k] for k in own}, strict=True)
        return part
    backbone_keys = list(model.backbone_module().state_dict())
    missing = [k for k in backbone_keys if k not in state][:5]
    raise ValueError(
        f"encoder_weights: {str(path)!r} holds neither the whole network's nor the backbone's state dict "
        f"({len(state)} tensors, e.g. {list(state)[:3]}); backbone keys missing from it, e.g. {missing}"
    )


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
