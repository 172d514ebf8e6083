"""What a release is made of: the changelog's section for this version and the public workflows."""

from __future__ import annotations

import re
from pathlib import Path

import sal_lightning

ROOT = Path(__file__).resolve().parents[1]
KINDS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}  # Keep a Changelog's


def release_sections(changelog: str) -> dict[str, str]:
    """``{"Unreleased": text, "0.1.0": text, ...}``: each ``## [...]`` section's body."""
    parts = re.split(r"^## \[([^\]]+)\][^\n]*\n", changelog, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_the_changelog_has_a_dated_section_for_this_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    version = sal_lightning.__version__
    assert re.search(rf"^## \[{re.escape(version)}\] - \d{{4}}-\d\d-\d\d$", text, re.M), version
    sections = release_sections(text)
    assert list(sections)[:2] == ["Unreleased", version]  # the newest release right below Unreleased
    for name in sections:
        assert re.search(rf"^\[{re.escape(name)}\]: https://", text, re.M), f"no link for [{name}]"
    kinds = re.findall(r"^### (.+)$", sections[version], re.M)
    assert kinds and set(kinds) <= KINDS, kinds
    added = set(re.findall(r"`([^`]+)`", sections[version].split("### Removed")[0]))
    removed = set(re.findall(r"`([^`]+)`", "".join(sections[version].split("### Removed")[1:])))
    assert not added & removed, f"added and removed in the same release: {sorted(added & removed)}"


def test_the_workflows_run_the_readme_test_command_and_publish_by_trusted_publishing() -> None:
    workflows = ROOT / ".github" / "workflows"
    tests = (workflows / "tests.yml").read_text()
    assert "run: .ci/run" in tests and '"3.10", "3.11", "3.12"' in tests
    ci = (ROOT / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in ci and "<!-- test-command -->" in (ROOT / "README.md").read_text()
    release = (workflows / "release.yml").read_text()
    assert 'tags: ["v*"]' in release and "id-token: write" in release
    assert "pypa/gh-action-pypi-publish" in release and "nox -s build" in release
    assert "password" not in release and "PYPI_TOKEN" not in release  # trusted publishing: no secret
    pyproject = (ROOT / "pyproject.toml").read_text()
    for version in ("3.10", "3.11", "3.12"):  # the classifiers name what the workflow tests
        assert f'"Programming Language :: Python :: {version}"' in pyproject
