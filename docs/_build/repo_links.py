"""MkDocs hook of the documentation site: links from a page to files outside ``docs/``.

The pages link to the repository's files (``../examples/configs/voc_vgg16.yaml``) so that they read
well on the forge too. On the site those files do not exist, so each such link becomes a link to the
file in the repository at ``repo_url``; a link to a file that the repository does not hold fails
the build.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

LINK = re.compile(r"\]\((\.\./[^)#\s]+)(#[^)\s]*)?\)")


def on_page_markdown(markdown: str, *, page: Any, config: Any, files: Any) -> str:
    docs = Path(config["docs_dir"]).resolve()
    root = docs.parent
    page_dir = (docs / page.file.src_path).parent

    def rewrite(match: re.Match[str]) -> str:
        target = (page_dir / match.group(1)).resolve()
        if docs in target.parents or target == docs:
            return match.group(0)
        if root not in target.parents or not target.exists():
            raise PluginError(f"{page.file.src_path}: link to {match.group(1)!r}, which the repository lacks")
        relative = target.relative_to(root).as_posix()
        kind = "tree" if target.is_dir() else "blob"
        return f"]({config['repo_url'].rstrip('/')}/{kind}/main/{relative}{match.group(2) or ''})"

    return LINK.sub(rewrite, markdown)
