"""Local weights files for DeepLab networks: a whole network's state dict, or only its backbone's."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from sal_lightning.nn.deeplab import DeepLab

#: file suffixes that mark ``encoder_weights`` as a local file rather than a hub name
WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")
#: top-level keys of ImageNet classification checkpoints that a backbone load skips
_CLASSIFIER_KEYS = ("fc", "classifier", "head", "last_linear")


def looks_like_path(value: str | os.PathLike[str]) -> bool:
    if isinstance(value, os.PathLike):
        return True
    return (
        any(sep in value for sep in ("/", os.sep))
        or value.lower().endswith(WEIGHT_SUFFIXES)
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
