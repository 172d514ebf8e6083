"""The fidelity table rendered as markdown (``python -m sal_lightning.paper`` prints it)."""

from __future__ import annotations

from typing import Any

from sal_lightning.paper.rows import ROWS, Row
from sal_lightning.paper.values import NETWORKS, PAPER, RELEASED


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str):
        return f"`{value}`"
    if isinstance(value, tuple | list):
        return "/".join(_format_value(v) for v in value)
    if isinstance(value, float) and value != 0 and abs(value) < 0.01:
        mantissa, exponent = f"{value:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    if isinstance(value, int) and value >= 10000:
        return f"{value // 1000}k" if value % 1000 == 0 else str(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _cells(row: Row) -> list[str]:
    values = {net: {k: _format_value(v) for k, v in PAPER[net].items()} for net in NETWORKS}
    released = {k: _format_value(v) for k, v in RELEASED.items()}
    fields = (row.setting, row.paper, row.released, row.default, row.option, row.why)
    return [f.format(released=released, **values).replace("|", "\\|") for f in fields]


def fidelity_table() -> str:
    """The markdown table of :data:`ROWS` (``docs/fidelity.md`` holds it verbatim)."""
    lines = [
        "| setting | paper | released code | library default | option | why |",
        "|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in ROWS]
    return "\n".join(lines) + "\n"
