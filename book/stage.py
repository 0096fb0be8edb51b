"""Lay out the book's sources: which pages, in which order, with which links.

The staged tree mirrors the repository (``lectures/``, ``assignments/<id>/``, ``docs/``), so a
page's path is the notebook's path in the repository: the launch buttons and the links between
notebooks work unchanged. Pages are discovered, never listed by hand: every
``lectures/*.ipynb``, every ``assignments/*/*.ipynb`` and every ``docs/*.md`` except the
contributors' conventions, ordered as the README's "Contents, in order" first links them
(then by name).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

README = "README.md"
CONTENTS_HEADING = "Contents, in order"
PREREQUISITES_HEADING = "Prerequisites"
DOCS_EXCLUDED = {"CONVENTIONS.md"}
DOCS_FIRST = ("reproduction.md",)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg"}
BINDER_LINE = re.compile(r"BINDER_REPO\s*=\s*`([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)`")
MD_LINK = re.compile(r"(!?\[[^\]\n]*\]\()([^)\s]+)(\))")
CODE_SPANS = re.compile(r"(```.*?```|~~~.*?~~~|`[^`\n]*`)", re.DOTALL)


@dataclass
class Pages:
    """The book's pages, as paths relative to the course root, in reading order."""

    lectures: list[Path] = field(default_factory=list)
    assignments: list[Path] = field(default_factory=list)
    docs: list[Path] = field(default_factory=list)

    def all(self) -> list[Path]:
        return self.lectures + self.assignments + self.docs


def binder_repo(readme_text: str) -> str:
    """The ``owner/name`` of the README line ``BINDER_REPO = `owner/name```."""
    match = BINDER_LINE.search(readme_text)
    if not match:
        raise ValueError("README.md has no line BINDER_REPO = `owner/name`")
    return match.group(1)


def binder_url(repo: str, notebook: str) -> str:
    """The README's launch link: ``https://mybinder.org/v2/gh/<repo>/HEAD?labpath=<nb>``."""
    from urllib.parse import quote

    return f"https://mybinder.org/v2/gh/{repo}/HEAD?labpath={quote(notebook, safe='')}"


def section(markdown: str, heading: str) -> str | None:
    """The body of the first ``#``-heading whose text starts with ``heading`` (or None).

    The body runs to the next heading of the same or a higher level; fenced code is skipped
    when looking for headings.
    """
    lines = markdown.split("\n")
    start: int | None = None
    level = 0
    fenced = False
    for i, line in enumerate(lines):
        if line.startswith(("```", "~~~")):
            fenced = not fenced
        if fenced:
            continue
        match = re.match(r"^(#{1,6})\s+(.*)$", line)
        if not match:
            continue
        depth = len(match.group(1))
        if start is None and match.group(2).strip().startswith(heading):
            start, level = i + 1, depth
        elif start is not None and depth <= level:
            return "\n".join(lines[start:i]).strip("\n")
    return None if start is None else "\n".join(lines[start:]).strip("\n")


def readme_order(readme_text: str) -> list[str]:
    """Notebook paths in the order the README's contents section first links them."""
    text = section(readme_text, CONTENTS_HEADING) or readme_text
    order: list[str] = []
    for match in re.finditer(r"\]\(([^)\s#]+\.ipynb)", text):
        if match.group(1) not in order:
            order.append(match.group(1))
    return order


def discover(root: Path) -> Pages:
    """Every page of the book, in reading order."""
    order = readme_order((root / README).read_text(encoding="utf-8"))

    def rank(path: Path) -> tuple[int, str]:
        key = path.as_posix()
        return (order.index(key) if key in order else len(order), key)

    def found(pattern: str) -> list[Path]:
        return sorted(
            (
                p.relative_to(root)
                for p in root.glob(pattern)
                if ".ipynb_checkpoints" not in p.parts
            ),
            key=rank,
        )

    docs = [p for p in found("docs/*.md") if p.name not in DOCS_EXCLUDED]
    docs.sort(key=lambda p: (p.name not in DOCS_FIRST, p.name))
    return Pages(found("lectures/*.ipynb"), found("assignments/*/*.ipynb"), docs)


def _resolve(base: PurePosixPath, target: str) -> PurePosixPath | None:
    """``target`` (relative to the folder ``base``) as a path from the root, or None."""
    parts: list[str] = []
    for part in (base / target).parts:
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part not in (".", ""):
            parts.append(part)
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def rewrite_links(
    markdown: str, source: str, root: Path, pages: set[str], repo: str, assets: set[str]
) -> str:
    """Make every relative link of ``markdown`` (from the file ``source``) work in the book.

    A link to another page stays; a link to an image of the repository stays and the image
    is recorded in ``assets`` (to be copied next to the page); a link to anything else of the
    repository (code, a folder, the README) becomes its address on GitHub, since the book
    holds only the pages. Links inside code spans and fenced code are left alone.
    """
    base = PurePosixPath(source).parent
    is_page = source in pages

    def fix(match: re.Match) -> str:
        target = match.group(2)
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):  # http:, mailto:, ...
            return match.group(0)
        path, hashmark, fragment = target.partition("#")
        if not path:
            if is_page:
                return match.group(0)
            path = source
        resolved = _resolve(base, path)
        if resolved is None:
            return match.group(0)
        key = resolved.as_posix()
        if key in pages:
            return match.group(0)
        if (root / key).is_file() and resolved.suffix.lower() in IMAGE_SUFFIXES:
            assets.add(key)
            return match.group(0)
        kind = "tree" if (root / key).is_dir() else "blob"
        url = f"https://github.com/{repo}/{kind}/HEAD/{key}" + (hashmark + fragment)
        if key == ".":
            url = f"https://github.com/{repo}" + (hashmark + fragment)
        return f"{match.group(1)}{url}{match.group(3)}"

    pieces = CODE_SPANS.split(markdown)
    return "".join(piece if i % 2 else MD_LINK.sub(fix, piece) for i, piece in enumerate(pieces))


def copy_assets(root: Path, out: Path, assets: set[str]) -> None:
    """Copy the images pages link to into the staged tree, at the same relative paths."""
    for key in sorted(assets):
        target = out / key
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / key, target)


def toctree(caption: str, pages: list[Path]) -> str:
    """A hidden MyST toctree (the sidebar's navigation) for ``pages``."""
    entries = "\n".join(p.with_suffix("").as_posix() for p in pages)
    return f"```{{toctree}}\n:caption: {caption}\n:hidden:\n:maxdepth: 1\n\n{entries}\n```\n"
