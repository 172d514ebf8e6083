"""Lazy package exports (PEP 562): a public name is imported from its module on first access.

Keeps ``import sal_lightning`` (and its subpackages) cheap: importing the pure-PyTorch losses never
imports Lightning, and CRF worker processes never import torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose public names live in other modules.

    ``exports`` maps each public name to the module defining it; a resolved name is cached in the
    package's ``namespace`` (its ``globals()``), whose ``__all__`` lists what ``dir()`` shows.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(namespace.get("__all__", exports))

    return __getattr__, __dir__
