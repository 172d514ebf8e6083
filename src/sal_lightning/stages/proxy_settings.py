"""Settings of step 1 (:class:`ProxySettings`), the named starting points (:data:`PRESETS`), and the
check that both of its networks can be built."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sal_lightning.stages.checks import (
    build_on_meta,
    check_at_least,
    check_number,
    check_positive,
    check_share,
)


@dataclass(frozen=True)
class ProxySettings:
    """Settings of step 1. The defaults are the paper's SAL-Net-ResNet101 step 1: the VGG16 CAM
    network of Sec. III-A (VGG16 conv layers, conv6/conv7 of 1024 channels, global average pooling,
    a linear classifier) and DSRG on DeepLab v2 ResNet-101 (the ProxyNet). The training settings,
    which the paper leaves to SEC / DSRG, follow those papers (IRN for the CAM schedule).

    Attributes:
        num_workers: DataLoader worker processes.
        seed: seed of both trainings.
        cam_backbone: the CAM network's trunk (a :func:`~sal_lightning.nn.build_deeplab` name).
        cam_backbone_kwargs: further ``build_deeplab`` arguments of the CAM trunk.
        cam_output_stride: the CAM trunk's output stride.
        cam_encoder_weights: ``None``, a hub name (``"imagenet"``), a URL or a weights file for the
            CAM trunk.
        cam_conv7_channels: width of conv6 / conv7 (``None``: none).
        cam_lr: the CAM network's learning rate.
        cam_steps: the CAM network's training steps.
        cam_batch_size: the CAM network's batch size.
        cam_crop_size: the CAM network's training crop.
        cam_scales: input scales fused (with flips) when extracting CAMs.
        fg_ratio: foreground seeds where a tagged class's CAM > ratio x its maximum.
        background: where the background seeds come from: ``"saliency"`` (DSRG's: the pixels whose
            saliency is below ``bg_saliency``; the saliency maps must be given) or ``"cam"`` (the
            ``bg_quantile`` share of the pixels with the lowest CAMs; no saliency needed, weaker
            proxies).
        bg_saliency: background seeds where the saliency is below it.
        bg_quantile: with ``background="cam"``, the share of lowest-CAM pixels seeded as background.
        proxy_backbone: the ProxyNet (a ``build_deeplab`` name; DeepLab v2 on the Caffe ResNet-101,
            the paper's, by default).
        proxy_backbone_kwargs: further ``build_deeplab`` arguments of the ProxyNet.
        proxy_output_stride: the ProxyNet's output stride.
        proxy_encoder_weights: ``None``, a hub name (``"coco"`` for the Caffe trunk, ``"imagenet"``
            for the others), a URL or a weights file for the ProxyNet.
        proxy_lr: the ProxyNet's learning rate.
        proxy_steps: the ProxyNet's training steps.
        proxy_batch_size: the ProxyNet's batch size.
        proxy_crop_size: the ProxyNet's training crop.
        balanced_seed_loss: DSRG's class-balanced seed loss (else SEC's).
        expand_weight: weight of the expand loss.
        constrain_weight: weight of the constrain loss (needs dense CRF when > 0).
        grow: DSRG's seed growing.
        test_scales: input scales fused (with flips) when predicting the proxies.
        crf: refine the proxies with dense CRF.
        crf_processes: CRF worker processes (``None``: the CPU cores per device; 0: in the process).
        predict_with_tags: restrict the proxies to each image's tagged classes (and background);
            off, the ProxyNet's own prediction, which can hold untagged classes (the paper's: its
            class distribution CD, Eq. 4, scores the pixels of untagged classes).
    """

    num_workers: int = 4
    seed: int = 0
    cam_backbone: str = "vgg16_aspp"
    cam_backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    cam_output_stride: int = 8
    cam_encoder_weights: str | None = None
    cam_conv7_channels: int | None = 1024
    cam_lr: float = 0.01
    cam_steps: int = 6000
    cam_batch_size: int = 16
    cam_crop_size: int = 448
    cam_scales: tuple[float, ...] = (1.0, 0.5, 1.5, 2.0)
    fg_ratio: float = 0.2
    background: Literal["saliency", "cam"] = "saliency"
    bg_saliency: float = 0.06
    bg_quantile: float = 0.3
    proxy_backbone: str = "deeplabv2_caffe_resnet101"
    proxy_backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    proxy_output_stride: int = 8
    proxy_encoder_weights: str | None = None
    proxy_lr: float = 1e-3
    proxy_steps: int = 8000
    proxy_batch_size: int = 10
    proxy_crop_size: int = 321
    balanced_seed_loss: bool = True
    expand_weight: float = 1.0
    constrain_weight: float = 1.0
    grow: bool = True
    test_scales: tuple[float, ...] = (0.5, 0.75, 1.0)
    crf: bool = True
    crf_processes: int | None = None
    predict_with_tags: bool = False

    def __post_init__(self) -> None:
        for name in ("cam_steps", "cam_batch_size", "cam_crop_size", "proxy_steps", "proxy_batch_size"):
            check_at_least(name, getattr(self, name), minimum=1)
        check_at_least("proxy_crop_size", self.proxy_crop_size, minimum=1)
        check_at_least("num_workers", self.num_workers, minimum=0)
        if self.crf_processes is not None:
            check_at_least("crf_processes", self.crf_processes, minimum=0)
        for name in ("fg_ratio", "bg_saliency", "bg_quantile"):
            check_share(name, getattr(self, name))
        check_positive("cam_scales", self.cam_scales)
        check_positive("test_scales", self.test_scales)
        check_at_least("seed", self.seed, minimum=0)
        for name in ("cam_output_stride", "proxy_output_stride"):
            check_at_least(name, getattr(self, name), minimum=1)
        if self.cam_conv7_channels is not None:
            check_at_least("cam_conv7_channels", self.cam_conv7_channels, minimum=1)
        for name in ("cam_lr", "proxy_lr"):
            check_number(name, getattr(self, name), strict=True)
        for name in ("expand_weight", "constrain_weight"):
            check_number(name, getattr(self, name))
        if self.background not in ("saliency", "cam"):
            raise ValueError(f"background: expected 'saliency' or 'cam', got {self.background!r}")

    def batch_sizes(self) -> dict[str, int]:
        """The training batch sizes by setting name (the pipeline checks them against the devices)."""
        return {"cam_batch_size": self.cam_batch_size, "proxy_batch_size": self.proxy_batch_size}

    def check_saliency(self, saliency: object) -> None:
        """Refuse ``background="saliency"`` without saliency maps (``saliency`` is their folder)."""
        if self.background == "saliency" and saliency is None:
            raise ValueError(
                "saliency: step 1 seeds the background from saliency maps, as DSRG does "
                "(background: saliency, the paper's); give --saliency FOLDER (one grayscale PNG per "
                "image id), or set background: cam (--proxies.background cam in a pipeline) to seed it "
                "from the lowest CAMs instead (weaker proxies, docs/proxies.md)"
            )

    def warning(self) -> str | None:
        """The warning line of a run without saliency maps (``background="cam"``), else ``None``."""
        if self.background != "cam":
            return None
        return (
            f"WARNING: step 1 seeds the background from the lowest {self.bg_quantile:.0%} of the CAMs "
            f"(background: cam), not from saliency maps as DSRG does; expect weaker proxies "
            f"(docs/proxies.md measures the loss)"
        )

    @property
    def needs_crf(self) -> bool:
        """Whether step 1 runs dense CRF (proxy refinement or the constrain loss)."""
        return self.crf or self.constrain_weight > 0

    def network(self, which: str) -> dict[str, Any]:
        """The network arguments of the CAM classifier (``which="cam"``,
        :class:`~sal_lightning.models.CAMClassifier`) or of the ProxyNet (``"proxy"``,
        :class:`~sal_lightning.models.ProxyNet`)."""
        return {
            "backbone": getattr(self, f"{which}_backbone"),
            "output_stride": getattr(self, f"{which}_output_stride"),
            "encoder_weights": getattr(self, f"{which}_encoder_weights"),
            "backbone_kwargs": dict(getattr(self, f"{which}_backbone_kwargs")),
        }


#: named starting configurations: the paper's step 1 of SAL-Net-ResNet101 (``paper-resnet101``, also
#: called ``paper``: the defaults) and of SAL-Net-VGG16 (``paper-vgg16``: DSRG on VGG16
#: DeepLab-ASPP), both with the VGG16 CAM network, and a small from-scratch CPU run on the synthetic
#: data (ResNet-18 trunks, 64 px images, proxies restricted to the tags; the figures in
#: docs/proxies.md, and ``examples/configs/proxies_synthetic_cpu.yaml`` for the command line)
PRESETS: dict[str, ProxySettings] = {
    "paper-resnet101": ProxySettings(),
    "paper-vgg16": ProxySettings(proxy_backbone="vgg16_aspp"),
    "paper": ProxySettings(),
    "synthetic-cpu": ProxySettings(
        num_workers=0,
        cam_backbone="deeplabv3_resnet18",
        cam_backbone_kwargs={"encoder_depth": 4},
        cam_output_stride=8,
        cam_conv7_channels=None,
        cam_lr=0.01,
        cam_steps=600,
        cam_batch_size=16,
        cam_crop_size=64,
        proxy_backbone="deeplabv3_resnet18",
        proxy_backbone_kwargs={"encoder_depth": 4, "decoder_channels": 64},
        proxy_lr=0.01,
        proxy_steps=600,
        proxy_batch_size=8,
        proxy_crop_size=65,
        test_scales=(0.75, 1.0, 1.25),
        crf_processes=0,
        predict_with_tags=True,
    ),
}


def check_networks(config: ProxySettings) -> None:
    """Build both networks of step 1 on the meta device (no memory, no download): an unknown
    backbone or a bad size fails now, naming ``cam_backbone`` or ``proxy_backbone``."""
    from sal_lightning.models.cam import CAMClassifier
    from sal_lightning.models.proxy import ProxyNet

    build_on_meta(CAMClassifier, config.network("cam"), argument="cam_backbone")
    build_on_meta(ProxyNet, config.network("proxy"), argument="proxy_backbone")
