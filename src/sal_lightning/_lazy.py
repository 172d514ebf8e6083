"""Lazy imports: package exports (PEP 562) and heavy modules, imported on first use.

Keeps ``import sal_lightning`` (and its subpackages) cheap: importing the pure-PyTorch losses never
imports Lightning, CRF worker processes never import torch, and the command line reads every
setting (``--help``, a configuration error) without importing torch or Lightning.
"""

from __future__ import annotations

import importlib
import sys
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


class _LazyModule:
    """A stand-in for a module, imported on the first attribute access (see :func:`lazy_module`)."""

    def __init__(self, name: str, namespace: dict[str, Any]) -> None:
        self._name = name
        self._namespace = namespace

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):  # introspection (hasattr(x, "__args__")...)
            raise AttributeError(attr)
        module = importlib.import_module(self._name)
        for key, value in list(self._namespace.items()):
            if value is self:  # later uses in the importing module find the module itself
                self._namespace[key] = module
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<module {self._name!r}, imported on first use>"


def lazy_module(name: str) -> Any:
    """The module ``name``, imported when one of its attributes is first used.

    For the heavy libraries (torch, Lightning) of modules that the command line reads for its
    settings: ``--help`` and a configuration error then answer without importing them. Write it
    beside a plain import for the type checker, in the ``else`` branch of ``if not TYPE_CHECKING``
    (jsonargparse runs the body of an ``if TYPE_CHECKING`` block to read a module's annotations,
    which would import the heavy module after all)::

        if not TYPE_CHECKING:
            torch = lazy_module("torch")
        else:
            import torch
    """
    return _LazyModule(name, sys._getframe(1).f_globals)
