"""One stack: the extras of the library (the test tools included) leave numpy and opencv as the
user has them, so the tests run on the versions the demo and the users run on."""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest brings tomli on Python 3.10
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
#: the distributions whose major version an extra must not hold back
SHARED = ("numpy", "opencv-python", "opencv-python-headless", "torch")


def extras() -> dict[str, list[Requirement]]:
    data = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    return {
        name: [Requirement(r) for r in reqs if not r.startswith("sal-lightning")]
        for name, reqs in data.items()
    }


def caps(requirement: Requirement) -> list[str]:
    """The upper bounds (``<``, ``<=``, ``==``, ``~=``) that ``requirement`` puts on :data:`SHARED`."""
    name = re.sub(r"[-_.]+", "-", requirement.name).lower()
    if name not in SHARED:
        return []
    return [str(s) for s in requirement.specifier if s.operator in ("<", "<=", "==", "~=", "===")]


@pytest.mark.parametrize("extra", list(extras()))
def test_no_extra_caps_numpy_opencv_or_torch(extra: str) -> None:
    """Neither the extra itself nor (where installed) what its packages require."""
    for requirement in extras()[extra]:
        assert caps(requirement) == [], f"[{extra}] {requirement}"
        try:
            needs = metadata.requires(requirement.name) or []
        except metadata.PackageNotFoundError:
            continue  # not installed here: its own pins are checked where it is
        for text in needs:
            need = Requirement(text)
            if need.marker is None or need.marker.evaluate({"extra": ""}):
                assert caps(need) == [], f"[{extra}] {requirement.name} requires {need}"


def test_the_gdn_reference_is_not_a_dependency() -> None:
    """compressai pins numpy < 2 and an old opencv: the GDN tests use the formula instead."""
    names = {r.name.lower() for reqs in extras().values() for r in reqs}
    assert "compressai" not in names
