"""segmentation-models-pytorch's DeepLabV3 with any smp encoder, as a
:class:`~sal_lightning.nn.deeplab.DeepLab`."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from sal_lightning.nn.deeplab import DeepLab


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
