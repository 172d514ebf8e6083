"""What the paper states (:data:`PAPER`, per network) and what the released code fills in where the
paper is silent (:data:`RELEASED`), under the names the configurations use."""

from __future__ import annotations

from typing import Any

NETWORKS = ("vgg16", "resnet101")

_COMMON: dict[str, Any] = {
    "cam_backbone": "vgg16_aspp",  # its trunk: VGG16 conv layers (Sec. III-A)
    "cam_conv7_channels": 1024,  # conv6 / conv7, GAP on conv7, a linear classifier
    "background": "saliency",  # step 1 is DSRG [12]: background seeds from saliency maps
    "predict_with_tags": False,  # proxies can hold untagged classes (Eq. 4, Figs. 4 and 6)
    "output_stride": 8,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "poly_power": 0.9,
    "batch_size": 7,  # the global batch (one GPU, Table XI)
    "crop_size": 321,
    "lambda_atten": 2.0,
    "branch_rates": (1, 3, 6, 9),
    "branch_combine": "sum",
    "attention_refine": True,
    "scorer_lr": 1e-5,
    "scorer_batch_size": 8,
    "scorer_max_epochs": 50,
    "b": 0.1,
    "test_flip": False,
    "crf": True,
}

#: what the paper states, per network, under the configuration's names
PAPER: dict[str, dict[str, Any]] = {
    "vgg16": {
        **_COMMON,
        "proxy_backbone": "vgg16_aspp",
        "backbone": "vgg16_aspp",
        "dropout": 0.5,
        "lr": 1e-3,
        "max_steps": 27000,
        "tau_coarse": 0.55,
        "tau": 0.55,
    },
    "resnet101": {
        **_COMMON,
        "proxy_backbone": "deeplabv2_caffe_resnet101",
        "backbone": "deeplabv2_caffe_resnet101",
        "lr": 1e-4,
        "max_steps": 15000,
        "tau_coarse": 0.8,
        "tau": 0.85,
    },
}

#: the released code's values where the paper gives none (the library's configs follow them)
RELEASED: dict[str, Any] = {
    "head_lr_mult": 10.0,
    "head_bias_lr_mult": 20.0,
    "test_scales": (0.5, 0.75, 1.0),
}
