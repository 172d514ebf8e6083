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

SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Attributes|Other Parameters|Keyword Args):\s*$")
GROUPED = re.compile(r"^(\s+)([A-Za-z_]\w*(?:,\s*[A-Za-z_]\w*)+):(\s.*|)$")
ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):`(~?)([^`]+)`")
DOUBLE_BACKQUOTES = re.compile(r"``([^`]+)``")


def _reference(match: re.Match[str]) -> str:
    short, target = match.group(1) == "~", match.group(2).strip()
    if target.startswith("."):
        target = target[1:]
    shown = target.rsplit(".", 1)[-1] if short else target
    private = any(part.startswith("_") for part in target.split("."))
    if not target.startswith("sal_lightning") or private:
        return f"`{shown}`"
    return f"[`{shown}`][{target}]"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def split_grouped(text: str) -> str:
    """Entries that document several parameters at once (``a, b: what they are``) as one entry
    per parameter, each with the shared description, as the Google style's parsers expect."""
    lines, out, section = text.splitlines(), [], None
    i = 0
    while i < len(lines):
        line = lines[i]
        header = SECTION.match(line)
        if header:
            section = _indent(line)
        elif line.strip() and section is not None and _indent(line) <= section:
            section = None
        grouped = GROUPED.match(line) if section is not None else None
        if grouped is None:
            out.append(line)
            i += 1
            continue
        indent, names, rest = grouped.group(1), grouped.group(2), grouped.group(3)
        block = [rest]
        i += 1
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > len(indent)):
            block.append("\n" + lines[i])
            i += 1
        for name in (n.strip() for n in names.split(",")):
            out.append(f"{indent}{name}:{''.join(block)}")
    return "\n".join(out)


def markdown(text: str) -> str:
    """``text`` with reST roles as cross-references and double backquotes as code spans."""
    return ROLE.sub(_reference, DOUBLE_BACKQUOTES.sub(r"`\1`", split_grouped(text)))


class ReSTRoles(griffe.Extension):
    """Rewrites every docstring of the loaded package (see the module docstring)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
