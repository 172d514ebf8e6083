"""Local weights files for DeepLab networks: a whole network's state dict, or only its backbone's.

Layouts read by name, with any common key prefix (``base.``, ``module.``, ``model.``, ``net.``...):

- torchvision / smp ResNets and torchvision's VGG16 (``layer1.0.conv1.weight``, ``features.0.weight``)
  into ``deeplabv2_<encoder>``, ``deeplabv3_<encoder>`` and the VGG16 trunks;
- the MSRA / Caffe ResNet-101 of ``kazuto1011/deeplab-pytorch`` (``layer2.block1.reduce.conv.weight``;
  ``deeplabv1_resnet101-coco.pth``, and its trained ``deeplabv2_resnet101_msc-*.pth`` under ``base.``)
  into ``deeplabv2_caffe_resnet101``, whose module names are that layout's;
- the library's own networks and Lightning checkpoints (``state_dict`` under ``net.``...).
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from sal_lightning.nn.deeplab import DeepLab

#: file suffixes that mark ``encoder_weights`` as a local file rather than a hub name
WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")
#: top-level keys of classification checkpoints that a backbone load skips silently (ImageNet
#: ``fc`` / ``classifier``, the COCO init's 91-class ``fc``)
_CLASSIFIER_KEYS = ("fc", "classifier", "head", "last_linear")
#: key fragments that tell a file's layout, and the networks that read it
_LAYOUTS = (
    (
        ".reduce.conv.weight",
        "the MSRA / Caffe ResNet layout of kazuto1011/deeplab-pytorch, read by deeplabv2_caffe_resnet101",
    ),
    (
        "layer1.0.conv1.weight",
        "the torchvision / smp ResNet layout, read by deeplabv2_<encoder> / deeplabv3_<encoder>",
    ),
    ("features.28.weight", "torchvision's VGG16 layout, read by vgg16_aspp / vgg16_largefov"),
)


def looks_like_path(value: str | os.PathLike[str]) -> bool:
    if isinstance(value, os.PathLike):
        return True
    return (
        any(sep in value for sep in ("/", os.sep))
        or value.lower().endswith(WEIGHT_SUFFIXES)
        or os.path.isfile(value)
    )


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """The tensors of a weights file: ``torch.save`` of a state dict (or of a Lightning checkpoint,
    its ``state_dict``) read with ``weights_only=True``, or ``.safetensors``."""
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


def _tensors(module: nn.Module) -> dict[str, Tensor]:
    """``module``'s state dict without the batch-norm step counters (files often lack them)."""
    return {k: v for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}


def _best_prefix(own: dict[str, Tensor], state: dict[str, Tensor]) -> str:
    """The key prefix under which ``state`` holds the most keys of ``own`` (``""`` if none)."""
    counts: Counter[str] = Counter()
    for key in state:
        parts = key.split(".")
        for i in range(len(parts)):
            if ".".join(parts[i:]) in own:
                counts[".".join(parts[:i]) + ("." if i else "")] += 1
    if not counts:
        return ""
    return max(counts, key=lambda p: (counts[p], -len(p)))


def _layout_hint(state: dict[str, Tensor]) -> str:
    found = [text for fragment, text in _LAYOUTS if any(k.endswith(fragment) for k in state)]
    return f"; its keys are in {found[0]}" if found else ""


def _refusal(
    path: str, own: dict[str, Tensor], state: dict[str, Tensor], prefix: str, matched: int
) -> ValueError:
    missing = [k for k in own if prefix + k not in state]
    wrong = [
        f"{k}: file {tuple(state[prefix + k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if prefix + k in state and state[prefix + k].shape != v.shape
    ]
    where = f" under the prefix {prefix!r}" if prefix else ""
    details = [f"{len(missing)} missing, e.g. {missing[:3]}" if missing else ""]
    details.append(f"{len(wrong)} of another shape, e.g. {wrong[:3]}" if wrong else "")
    return ValueError(
        f"encoder_weights: {path!r} does not fit the backbone: matched {matched} of {len(own)} backbone "
        f"tensors{where} ({'; '.join(d for d in details if d)}; the file has {len(state)} tensors, e.g. "
        f"{list(state)[:3]}){_layout_hint(state)}"
    )


def _module_name(model: nn.Module, part: nn.Module) -> str:
    return next(name for name, module in model.named_modules() if module is part)


def _head_root(model: DeepLab, state: dict[str, Tensor], prefix: str, head: dict[str, Tensor]) -> str | None:
    """Where the file's network starts, given its backbone at ``prefix``: the backbone's own name
    removed (``net.encoder.`` -> ``net.``), or ``prefix`` itself (the Caffe layout keeps its trunk
    at the top: ``base.layer1...`` and ``base.aspp...``); ``None`` when the file holds no head key."""
    name = _module_name(model, model.backbone_module()) + "."
    roots = [prefix[: -len(name)]] if prefix.endswith(name) else []
    roots.append(prefix)
    counts = {root: sum(root + k in state for k in head) for root in roots}
    best = max(roots, key=lambda r: counts[r])
    return best if counts[best] else None


def _load_head(model: DeepLab, state: dict[str, Tensor], prefix: str, path: str) -> bool:
    """Load the head tensors that the file holds; a classifier of another class count is skipped
    with a warning, any other shape difference refused. Returns whether the whole head loaded."""
    backbone_name = _module_name(model, model.backbone_module()) + "."
    head = {k: v for k, v in _tensors(model).items() if not k.startswith(backbone_name)}
    root = _head_root(model, state, prefix, head)
    if root is None:
        return False
    loaded, skipped = {}, []
    for key, value in head.items():
        theirs = state.get(root + key)
        if theirs is None:
            continue
        if theirs.shape == value.shape:
            loaded[key] = theirs
        elif value.shape[0] == model.num_classes and theirs.shape[1:] == value.shape[1:]:
            skipped.append((key, int(theirs.shape[0])))
        else:
            raise ValueError(
                f"encoder_weights: {path!r}: the head tensor {root + key} has shape {tuple(theirs.shape)}, "
                f"the model's {key} {tuple(value.shape)}"
            )
    if skipped:
        warnings.warn(
            f"encoder_weights: the classifier of {path!r} has {skipped[0][1]} classes, the model "
            f"{model.num_classes}: {[k for k, _ in skipped]} keep their initialisation",
            stacklevel=3,
        )
    model.load_state_dict(loaded, strict=False)
    return len(loaded) == len(head)


def _load_backbone(backbone: nn.Module, state: dict[str, Tensor], path: str) -> tuple[str, dict[str, Tensor]]:
    """Load every backbone tensor from ``state`` (refused unless all match); returns the file's
    backbone prefix and the backbone's tensors."""
    own = _tensors(backbone)
    prefix = _best_prefix(own, state)
    matched = sum(prefix + k in state and state[prefix + k].shape == v.shape for k, v in own.items())
    if matched < len(own):
        raise _refusal(path, own, state, prefix, matched=matched)
    backbone.load_state_dict({k: state[prefix + k] for k in own}, strict=False)
    return prefix, own


def _warn_extra(
    state: dict[str, Tensor], prefix: str, own: dict[str, Tensor], head: set[str], path: str
) -> None:
    """Warn about the file's tensors next to the backbone's that neither the backbone nor the head
    took (classifier keys of ImageNet / COCO files and step counters aside)."""
    extra = [
        k
        for k in state
        if k.startswith(prefix)
        and k[len(prefix) :] not in own
        and not k.endswith("num_batches_tracked")
        and k[len(prefix) :].split(".")[0] not in _CLASSIFIER_KEYS
        and not any(k == h or k.endswith("." + h) for h in head)
    ]
    if extra:
        warnings.warn(
            f"encoder_weights: {len(extra)} tensors of {path!r} are not in the backbone and were "
            f"skipped, e.g. {extra[:5]}",
            stacklevel=3,
        )


def load_backbone_weights(backbone: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load a local weights file into a backbone module (e.g. an smp encoder) by name, under any
    common key prefix; refused with the count of matched tensors unless every one matches."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"encoder_weights: no such file {str(path)!r}")
    state = read_state_dict(path)
    prefix, own = _load_backbone(backbone, state, str(path))
    _warn_extra(state, prefix, own, set(), path=str(path))


def load_weights(model: DeepLab, path: str | os.PathLike[str]) -> Literal["model", "backbone"]:
    """Load a local weights file into ``model``: its backbone, and the head where the file holds it.

    The file (``torch.save`` of a state dict, a Lightning checkpoint's ``state_dict``, or
    ``.safetensors``) may hold the whole network or only its backbone, in one of the layouts of the
    module docstring, under any common key prefix. Every backbone tensor must be present with the
    model's shape (batch-norm step counters aside), else ``ValueError`` says how many matched
    (``matched 0 of 520 backbone tensors``), which are missing and which layout the file looks like.
    Head tensors load where present; a classifier of another class count keeps its initialisation
    (with a warning). Other tensors next to the backbone's are skipped with a warning, the
    classifier keys of ImageNet / COCO files (``fc.``, ``classifier.``...) silently. Returns
    ``"model"`` when the whole network loaded, else ``"backbone"``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"encoder_weights: no such file {str(path)!r}")
    state = read_state_dict(path)
    prefix, own = _load_backbone(model.backbone_module(), state, str(path))
    whole = _load_head(model, state, prefix, str(path))
    _warn_extra(state, prefix, own, set(_tensors(model)), path=str(path))
    return "model" if whole else "backbone"
