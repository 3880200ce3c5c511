"""MkDocs hook: ``!include PATH`` on a line of its own puts a Markdown file of the
repository (PATH from the top) in the page, with its relative links rewritten so
that they work from the page: a link into docs/ points at the site's own file, any
other at the file in the source repository. The architecture page and the changelog
include docs/architecture.md and CHANGELOG.md this way, so they are never copies."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

INCLUDE = re.compile(r"^!include (\S+)[ \t]*$", re.M)
LINK = re.compile(r"(\]\(|^\[[^\]]+\]:[ \t]*)([^)\s#]+)((?:#[^)\s]*)?)", re.M)
EXTERNAL = re.compile(r"^([a-z][a-z0-9+.-]*:|/)", re.I)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    top = Path(config["config_file_path"]).parent
    docs = Path(config["docs_dir"])
    page_dir = posixpath.dirname(page.file.src_uri)
    source = str(config.get("repo_url") or "").rstrip("/")

    def include(match: re.Match[str]) -> str:
        path = (top / match.group(1)).resolve()
        if not path.is_file():
            raise PluginError(f"{page.file.src_uri}: !include {match.group(1)}: no such file")
        here = path.parent

        def rewrite(link: re.Match[str]) -> str:
            opening, target, anchor = link.groups()
            if EXTERNAL.match(target):
                return link.group(0)
            resolved = (here / target).resolve()
            if resolved.is_relative_to(docs):
                inside = resolved.relative_to(docs).as_posix()
                return opening + posixpath.relpath(inside, page_dir or ".") + anchor
            return f"{opening}{source}/blob/main/{resolved.relative_to(top).as_posix()}{anchor}"

        return LINK.sub(rewrite, path.read_text())

    return INCLUDE.sub(include, markdown)
