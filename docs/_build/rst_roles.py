"""Griffe extension of the documentation site: the docstrings' reST markup as Markdown.

The library's docstrings name other objects the Sphinx way (``:class:`~sal_lightning.nn.DeepLab```)
and quote code with double backquotes. Before mkdocstrings renders them, this turns a role naming an
object of the library into an autorefs cross-reference (``[`DeepLab`][sal_lightning.nn.DeepLab]``),
so that a reference that names nothing fails the strict build, and any other role into code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):`(~?)([^`]+)`")
DOUBLE_BACKQUOTES = re.compile(r"``([^`]+)``")


def _reference(match: re.Match[str]) -> str:
    short, target = match.group(1) == "~", match.group(2).strip()
    if target.startswith("."):
        target = target[1:]
    shown = target.rsplit(".", 1)[-1] if short else target
    if not target.startswith("sal_lightning"):
        return f"`{shown}`"
    return f"[`{shown}`][{target}]"


def markdown(text: str) -> str:
    """``text`` with reST roles as cross-references and double backquotes as code spans."""
    return ROLE.sub(_reference, DOUBLE_BACKQUOTES.sub(r"`\1`", text))


class ReSTRoles(griffe.Extension):
    """Rewrites every docstring of the loaded package (see the module docstring)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
