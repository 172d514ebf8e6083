"""Eager checks: what the settings and the inputs of a stage must satisfy, checked before any work.

Each raises ``ValueError`` (a setting), ``FileNotFoundError`` (an input) or ``ImportError`` (a
missing extra) with a message that names the setting or file and the fix. Settings classes call
them in ``__post_init__``, stage functions and pipeline steps before they start, so a bad value
fails in the first second whether it came from Python, a YAML file or a command line.
"""

from __future__ import annotations

import importlib
import inspect
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sal_lightning.data.layout import read_split, resolve_voc_root, root_classes


def check_at_least(argument: str, value: Any, *, minimum: int) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{argument}: expected an integer >= {minimum}, got {value!r}")


def check_share(argument: str, value: Any, *, low_open: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a number in [0, 1] (``(0, 1]`` when ``low_open``)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value <= 1
    ok = ok and (value > 0 if low_open else value >= 0)
    if not ok:
        raise ValueError(
            f"{argument}: expected a number in {'(0, 1]' if low_open else '[0, 1]'}, got {value!r}"
        )


def check_number(argument: str, value: Any, *, low: float = 0.0, strict: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a number ``>= low`` (``> low`` when ``strict``);
    NaN and booleans are refused."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    ok = ok and (value > low if strict else value >= low)  # False for NaN
    if not ok:
        raise ValueError(f"{argument}: expected a number {'>' if strict else '>='} {low:g}, got {value!r}")


def check_positive(argument: str, values: Sequence[float]) -> None:
    """Raise ``ValueError`` unless ``values`` holds one or more positive numbers."""
    if not values or not all(isinstance(x, int | float) and x > 0 for x in values):
        raise ValueError(f"{argument}: expected one or more positive numbers, got {values!r}")


def model_classes(root: str | os.PathLike[str], model: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The class settings a stage gives its model: ``num_classes`` (K) and ``class_names`` from
    the root's class list (its ``classes.txt``, VOC's 21 without one), unless ``model`` (the
    user's model settings) sets ``num_classes`` itself; then nothing, and a count that differs
    from the data's stops the run at ``setup``
    (:func:`~sal_lightning.data.classes.check_data_classes`)."""
    if model is not None and model.get("num_classes") is not None:
        return {}
    classes = root_classes(root)
    return {"num_classes": len(classes), "class_names": list(classes)}


def check_split(root: str, split: str | None, *, argument: str) -> list[str]:
    """The ids of ``split`` in the VOC root (raises naming the root, the split list and the fix)."""
    if split is None:
        return []
    try:
        return read_split(resolve_voc_root(root), split)
    except (OSError, ValueError) as err:
        raise type(err)(f"{argument}: {err}") from err


def check_folder(folder: str | None, argument: str) -> None:
    """Raise ``FileNotFoundError`` naming ``argument`` unless ``folder`` is ``None`` or a folder."""
    if folder is not None and not Path(folder).is_dir():
        raise FileNotFoundError(f"{argument}: folder {folder} not found")


def parameter_names(target: Callable[..., Any]) -> list[str]:
    """The keyword arguments ``target`` takes; for a class whose ``__init__`` passes ``**kwargs`` on,
    its parents' too (as jsonargparse and LightningCLI read them)."""
    inits = (
        [k.__dict__["__init__"] for k in target.__mro__ if "__init__" in k.__dict__]
        if isinstance(target, type)
        else [target]
    )
    names: list[str] = []
    for init in inits:
        params = inspect.signature(init).parameters
        names += [
            n
            for n, p in params.items()
            if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and n not in names
        ]
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            break
    return names


def resolve(target: Callable[..., Any] | str) -> Any:
    """``target`` itself, or the object a ``"package.module:Name"`` string names (imported now)."""
    if not isinstance(target, str):
        return target
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def check_kwargs(
    target: Callable[..., Any] | str,
    kwargs: Mapping[str, Any],
    *,
    argument: str,
    reserved: tuple[str, ...] = (),
) -> None:
    """Raise ``ValueError`` for a key of ``kwargs`` that ``target``'s signature does not take, or that
    the stage sets itself (``reserved``); the message lists the keys it takes.

    ``target`` may be a ``"module:Name"`` string, imported only when ``kwargs`` has keys to check
    (so default settings are read without importing torch or Lightning)."""
    if not kwargs:
        return
    function: Callable[..., Any] = resolve(target)
    names = parameter_names(function)
    unknown = sorted(set(kwargs) - set(names))
    if unknown:
        takes = sorted(set(names) - set(reserved))
        name = getattr(function, "__name__", repr(function))
        raise ValueError(f"{argument}: unknown setting(s) {unknown}; {name} takes {takes}")
    taken = sorted(set(kwargs) & set(reserved))
    if taken:
        raise ValueError(
            f"{argument}: {taken} are set by the step itself; remove them from the configuration"
        )


def build_on_meta(factory: Callable[..., Any] | str, kwargs: Mapping[str, Any], *, argument: str) -> None:
    """Construct ``factory(**kwargs)`` on PyTorch's meta device (no memory, nothing downloaded:
    ``encoder_weights`` is checked without network, :func:`~sal_lightning.nn.hub.check_weights_value`,
    and dropped), so every check its constructor makes (backbone names, sizes...) runs now; raise
    ``ValueError`` naming ``argument``. ``factory`` may be a ``"module:Name"`` string."""
    import torch

    from sal_lightning.nn.hub import check_weights_value

    build: Callable[..., Any] = resolve(factory)
    kwargs = dict(kwargs)
    for key in [k for k in kwargs if k.endswith("encoder_weights")]:
        value = kwargs.pop(key)
        try:
            check_weights_value(value, kwargs.get("backbone"), kwargs.get("encoder"))
        except (FileNotFoundError, ValueError) as err:
            raise type(err)(f"{argument}.{key}: {str(err).removeprefix('encoder_weights: ')}") from err
    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            build(**kwargs)
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"{argument}: {err}") from err


def check_crf(argument: str) -> None:
    """Raise ``ImportError`` naming the install command when dense CRF (the ``crf`` extra) is missing."""
    from sal_lightning.postprocess.crf import require_densecrf

    try:
        require_densecrf()
    except ImportError as err:
        raise ImportError(f"{argument} is on, but {err}") from err
