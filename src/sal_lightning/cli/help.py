"""How ``--help`` reads: sentences, without the docstrings' markup.

The option texts and group titles of every command come from docstrings, written for the API
documentation (``:class:`~sal_lightning.SALSegmenter```, ``scores.csv`` in double backquotes).
:class:`SentenceHelpFormatter` shows them as plain sentences: roles and backquotes removed, a
group title cut to its first sentence (a class's docstring summary may run on), a class shown
by its name, and every text starting with a capital letter.
"""

from __future__ import annotations

import re
from argparse import Action

from jsonargparse import DefaultHelpFormatter

_ROLE = re.compile(r":[a-z]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")  # :class:`~a.b.C` or :func:`f <a.f>`
_LITERAL = re.compile(r"``([^`]+)``")
_CLASS_REPR = re.compile(r"<class '(?:[\w.]+\.)?(\w+)'>")


def plain(text: str) -> str:
    """``text`` without reStructuredText roles and literals (a role keeps its last dotted part
    when written with ``~``, as Sphinx shows it)."""

    def role(match: re.Match[str]) -> str:
        target = match.group(1).strip()
        return target.rsplit(".", 1)[-1] if match.group(0).split("`")[1].startswith("~") else target

    return _LITERAL.sub(r"\1", _ROLE.sub(role, _CLASS_REPR.sub(r"\1", text)))


def sentence(text: str) -> str:
    """``plain(text)`` starting with a capital letter (unless it starts with a name such as ``b``,
    a single letter, or one written in snake case)."""
    text = plain(text).strip()
    word = re.match(r"[a-z]+\b", text)
    if word is None or len(word.group(0)) < 2 or text[word.end() : word.end() + 1] == "_":
        return text
    return text[:1].upper() + text[1:]


def title(heading: str) -> str:
    """A group title: plain, its first sentence when the docstring summary runs on (argparse adds
    the colon)."""
    text = sentence(heading).rstrip(":").strip()
    first = re.match(r"(.+?)[.!?]\s+[A-Z(]", text)
    return (first.group(1) if first else text).rstrip(".")


class SentenceHelpFormatter(DefaultHelpFormatter):
    """jsonargparse's help formatter, with the texts as :func:`sentence` and titles as :func:`title`."""

    def start_section(self, heading: str | None) -> None:
        super().start_section(title(heading) if heading else heading)

    def _get_help_string(self, action: Action) -> str:
        return sentence(super()._get_help_string(action))

    def _format_text(self, text: str) -> str:
        return super()._format_text(sentence(text) if "%(prog)" not in text else text)
