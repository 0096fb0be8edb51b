"""Build the course as a static HTML book: ``python -m book.build [--fast]``.

1. Discover the pages (``book/stage.py``): lectures, released assignments, ``docs/`` results.
2. Execute the lectures in full mode (``--fast``: ``CNN_COURSE_FAST=1``), reusing cached
   executed copies whose notebook, ``cnncourse/`` and data are unchanged (``book/execute.py``).
3. Stage the book's sources under ``book/_build/src-<mode>/`` with the same paths as in the
   repository: lectures tagged for reading (``book/notebooks.py``), assignments as released
   (not executed), links to files outside the book turned into GitHub addresses, the landing
   page from ``book/index.md`` and the README.
4. Run Sphinx (myst-nb, sphinx-book-theme; ``book/conf.py``) into ``book/_build/html`` (full)
   or ``book/_build/html-fast``, then put the committed notebooks (stripped, as students get
   them) behind each page's download button.

Everything runs offline; the site is plain files (``python -m http.server -d <site>``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402

from book import notebooks, stage  # noqa: E402
from book.execute import execute_all  # noqa: E402

BOOK = Path(__file__).resolve().parent

LECTURE_NOTE = {
    "full": (
        "This page is the lecture run from top to bottom in **full mode** (all of MNIST, "
        "full-length training) when the book was built. To run it yourself, use the launch "
        "button (Binder) or download the notebook (without outputs) with the download button, "
        "both at the top of the page."
    ),
    "fast": (
        "This page was built in **fast mode** (`CNN_COURSE_FAST=1`: a fixed subset of MNIST and "
        "short training, the build the tests check), so the networks trained on it are weakly "
        "trained; `make book` builds the book in full mode."
    ),
}
ASSIGNMENT_NOTE = (
    "This is the assignment as students receive it: no solutions, no hidden tests, and not run "
    "here. To work on it, launch it on Binder or download the notebook (buttons at the top of "
    "the page), fill in the cells marked `# YOUR CODE HERE` and run the test cell under each "
    "function: it tells you whether your function is right."
)
INDEX_NOTE = {
    "full": "",
    "fast": (
        "```{note}\nThis copy of the book was built in **fast mode** (`CNN_COURSE_FAST=1`), as "
        "the tests build it: the lectures trained briefly on a subset of MNIST. `make book` "
        "builds it in full mode.\n```"
    ),
}
PREREQUISITES_FALLBACK = (
    "* Python and numpy: arrays, slicing, broadcasting;\n"
    "* the matrix product and the chain rule of derivatives;\n"
    "* what a layer of a neural network, a loss and gradient descent are."
)


def write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless the file already holds it (Sphinx rebuilds changed files only)."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _fix_markdown_cells(nb, source: str, root: Path, pages: set[str], repo: str, assets: set):
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = stage.rewrite_links(cell.source, source, root, pages, repo, assets)


def landing_page(root: Path, pages: stage.Pages, repo: str, mode: str, assets: set) -> str:
    """``book/index.md`` filled in: README contents and prerequisites, links, navigation."""
    readme = (root / stage.README).read_text(encoding="utf-8")
    keys = {p.as_posix() for p in pages.all()}

    def from_readme(text: str) -> str:
        return stage.rewrite_links(text, stage.README, root, keys, repo, assets)

    contents = stage.section(readme, stage.CONTENTS_HEADING) or ""
    prerequisites = stage.section(readme, stage.PREREQUISITES_HEADING)
    first = pages.lectures[0].as_posix() if pages.lectures else "lectures"
    toctrees = "\n".join(
        stage.toctree(caption, group)
        for caption, group in (
            ("Lectures", pages.lectures),
            ("Assignments (as released)", pages.assignments),
            ("Results: reproduction and benchmarks", pages.docs),
        )
        if group
    )
    text = (BOOK / "index.md").read_text(encoding="utf-8")
    for name, value in {
        "MODE_NOTE": INDEX_NOTE[mode],
        "PREREQUISITES": from_readme(prerequisites) if prerequisites else PREREQUISITES_FALLBACK,
        "CONTENTS": from_readme(contents),
        "TOCTREES": toctrees,
        "BINDER_URL": stage.binder_url(repo, first),
        "REPO_URL": f"https://github.com/{repo}",
    }.items():
        text = text.replace(f"@@{name}@@", value)
    return text


def stage_sources(root: Path, src: Path, pages: stage.Pages, executed: dict, mode: str) -> None:
    """Write the book's sources into ``src`` (see the module docstring)."""
    repo = stage.binder_repo((root / stage.README).read_text(encoding="utf-8"))
    keys = {p.as_posix() for p in pages.all()}
    assets: set[str] = set()
    wanted = {"index.md"}
    for rel in pages.lectures:
        nb = notebooks.prepare_lecture(
            nbformat.read(executed[rel], as_version=4), LECTURE_NOTE[mode]
        )
        _fix_markdown_cells(nb, rel.as_posix(), root, keys, repo, assets)
        write_if_changed(src / rel, nbformat.writes(nb))
        wanted.add(rel.as_posix())
    for rel in pages.assignments:
        nb = notebooks.prepare_assignment(nbformat.read(root / rel, as_version=4), ASSIGNMENT_NOTE)
        _fix_markdown_cells(nb, rel.as_posix(), root, keys, repo, assets)
        write_if_changed(src / rel, nbformat.writes(nb))
        wanted.add(rel.as_posix())
    for rel in pages.docs:
        text = (root / rel).read_text(encoding="utf-8")
        write_if_changed(
            src / rel, stage.rewrite_links(text, rel.as_posix(), root, keys, repo, assets)
        )
        wanted.add(rel.as_posix())
    write_if_changed(src / "index.md", landing_page(root, pages, repo, mode, assets))
    stage.copy_assets(root, src, assets)
    wanted |= assets
    for path in sorted(src.rglob("*"), reverse=True):  # pages and images no longer in the book
        key = path.relative_to(src).as_posix()
        if path.is_file() and key not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def sphinx(src: Path, html: Path, doctrees: Path, mode: str, jobs: int) -> None:
    """Run sphinx-build (HTML) with ``book/conf.py``; raise when it fails."""
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-j", str(jobs)]
    command += ["-c", str(BOOK), "-d", str(doctrees), str(src), str(html)]
    env = {**os.environ, "CNN_BOOK_MODE": mode}
    done = subprocess.run(command, env=env)
    if done.returncode:
        raise RuntimeError(f"book: sphinx-build failed (exit {done.returncode})")


def download_originals(root: Path, html: Path, pages: list[Path]) -> None:
    """Put the committed notebooks (no outputs, no build tags) behind the download buttons."""
    for rel in pages:
        if rel.suffix == ".ipynb":
            target = html / "_sources" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, target)


def build(root: Path, fast: bool, jobs: int, out: Path | None = None, log=print) -> Path:
    """Build the book; return the site's folder."""
    mode = "fast" if fast else "full"
    out = out or root / "book" / "_build"
    html = out / ("html-fast" if fast else "html")
    start = time.monotonic()
    pages = stage.discover(root)
    runs = execute_all(
        root,
        pages.lectures,
        out / "cache" / mode,
        fast=fast,
        jobs=jobs,
        timeout_s=600 if fast else 7200,
        log=log,
    )
    executed_s = time.monotonic() - start
    stage_sources(root, out / f"src-{mode}", pages, {r.source: r.copy for r in runs}, mode)
    sphinx(out / f"src-{mode}", html, out / f"doctrees-{mode}", mode, jobs)
    download_originals(root, html, pages.all())
    total = time.monotonic() - start
    log(
        f"book: {len(pages.all())} pages ({len(pages.lectures)} lectures executed in {mode} mode, "
        f"{sum(not r.cached for r in runs)} of them run now) in {total:.0f} s "
        f"(executing {executed_s:.0f} s, rendering {total - executed_s:.0f} s): {html}/index.html"
    )
    return html


def main(argv: list[str] | None = None) -> int:
    from cnncourse.runtime import cpu_quota

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true", help="execute with CNN_COURSE_FAST=1")
    parser.add_argument("--jobs", type=int, default=min(2, cpu_quota()), help="notebooks at once")
    parser.add_argument("--root", type=Path, default=ROOT, help="the course to build")
    parser.add_argument("--out", type=Path, help="build folder (default: <root>/book/_build)")
    args = parser.parse_args(argv)
    try:
        build(args.root.resolve(), args.fast, args.jobs, args.out)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
