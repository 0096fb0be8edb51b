"""The course as a book, in a real browser: every page opens and reads as a book.

Builds the fast-mode book once (``python -m book.build --fast``: lectures executed with
``CNN_COURSE_FAST=1``, reusing ``book/_build/cache``), serves the site folder with a plain
static server on a free local port and opens every page in Debian's Chromium (Playwright,
never a browser of its own). Screenshots of five pages go to the test's temporary folder.

Skips, saying why, where Chromium or Playwright is missing.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import urllib.parse
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest
from servers import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.slow

TIMEOUT_MS = 60_000
TRACEBACK = "Traceback (most recent call last)"
# The page's text a reader sees without clicking: closed toggles' contents left out.
VISIBLE_TEXT_JS = """() => {
  const root = (document.querySelector('main') || document.body).cloneNode(true);
  root.querySelectorAll('details:not([open]) > :not(summary)').forEach(e => e.remove());
  root.querySelectorAll('script, style').forEach(e => e.remove());
  return root.textContent;
}"""
MATHJAX_DONE_JS = """() => window.MathJax && MathJax.Hub && MathJax.Hub.queue
  && !MathJax.Hub.queue.pending && !MathJax.Hub.queue.running
  && document.querySelectorAll('.MathJax, .MathJax_Display').length > 0"""
ALL_TEXT_JS = "() => (document.querySelector('main') || document.body).textContent"


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _notebook_text(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "\n".join(cell.source for cell in nb.cells)


def solution_lines(root: Path) -> dict[str, str]:
    """One distinctive line of each solution block of ``solutions/`` (by the cell's id).

    The longest line between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` that is not a
    comment and appears nowhere in what the book shows legitimately (the lectures, the
    released assignments, the docs pages, the README).
    """
    shown = _squash(
        "\n".join(
            [_notebook_text(p) for p in root.glob("lectures/*.ipynb")]
            + [_notebook_text(p) for p in root.glob("assignments/*/*.ipynb")]
            + [p.read_text(encoding="utf-8") for p in root.glob("docs/*.md")]
            + [(root / "README.md").read_text(encoding="utf-8")]
        )
    )
    found = {}
    for path in sorted(root.glob("solutions/*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            blocks = re.findall(
                r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, flags=re.DOTALL
            )
            for n, block in enumerate(blocks):
                candidates = sorted(
                    (
                        line.strip()
                        for line in block.split("\n")
                        if len(line.strip()) >= 20 and not line.strip().startswith("#")
                    ),
                    key=len,
                    reverse=True,
                )
                line = next((c for c in candidates if _squash(c) not in shown), None)
                if line:
                    found[f"{path.relative_to(root)}:{cell.get('id')}:{n}"] = line
    return found


@pytest.fixture(scope="module")
def book_site(root):
    """(site folder, pages) of the fast-mode book, built once for this module."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    pytest.importorskip("sphinx", reason="the book's packages are not installed (make install)")
    from book import build, stage
    from cnncourse.runtime import cpu_quota

    site = build.build(root, fast=True, jobs=min(2, cpu_quota()))
    return site, stage.discover(root)


@pytest.fixture(scope="module")
def server(book_site):
    site, _ = book_site

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("book-screenshots")
    yield folder
    print(f"screenshots: {folder}")


@pytest.fixture(scope="module")
def crawl(book_site, server, browser):
    """Every page reachable from the landing page, opened in Chromium: what each showed."""
    site, _ = book_site
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    current = {"url": ""}
    page.on(
        "requestfailed",
        lambda r: (
            "ERR_ABORTED" not in (r.failure or "")  # cancelled by leaving the page
            and not r.url.startswith("about:")  # MathJax's blank frame
            and problems.append(f"{current['url']}: request failed {r.url} ({r.failure})")
        ),
    )
    page.on(
        "response",
        lambda r: r.status >= 400 and problems.append(f"{current['url']}: {r.status} {r.url}"),
    )
    page.on(
        "request",
        lambda r: (
            not r.url.startswith((server, "data:", "blob:", "about:"))
            and problems.append(f"{current['url']}: request to another host {r.url}")
        ),
    )
    seen: dict[str, dict] = {}
    queue = ["index.html"]
    while queue:
        rel = queue.pop(0)
        if rel in seen:
            continue
        current["url"] = rel
        page.goto(server + rel)
        _settle(page)
        info = page.evaluate(
            """() => ({
              links: [...document.querySelectorAll('a[href]')].map(a => a.href),
              images: [...document.querySelectorAll('img')].map(i => ({
                src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0,
                output: !!i.closest('.cell_output')})),
              answers: document.querySelectorAll('details.cnn-answer').length,
              answerCells: document.querySelectorAll('.cell.tag_answer').length,
              answerCellsInside: [...document.querySelectorAll('.cell.tag_answer')]
                .filter(c => c.closest('details.cnn-answer')).length,
              answerOutputToggles: document.querySelectorAll('details.cnn-answer-output').length,
              tracebacks: document.querySelectorAll('.output.traceback, .output.error').length,
              math: document.querySelectorAll('.MathJax, .MathJax_Display, .MathJax_CHTML').length,
            })"""
        )
        info["visible"] = page.evaluate(VISIBLE_TEXT_JS)
        info["text"] = page.evaluate(ALL_TEXT_JS)
        seen[rel] = info
        for link in info["links"]:
            if not link.startswith(server):
                continue
            path = urllib.parse.urlsplit(link).path[1:] or "index.html"
            path = urllib.parse.unquote(path)
            if path.endswith("/"):
                path += "index.html"
            if path.endswith(".html") and path not in seen and path not in queue:
                if path not in {"genindex.html", "search.html"}:
                    queue.append(path)
    context.close()
    return seen, problems


FIRST_FIGURE_AFTER_JS = """(text) => {
  const h = [...document.querySelectorAll('h2, h3')].find(e => e.textContent.includes(text));
  if (!h) return false;
  const img = [...document.querySelectorAll('.cell_output img')].find(
    i => h.compareDocumentPosition(i) & Node.DOCUMENT_POSITION_FOLLOWING);
  if (!img) return false;
  img.scrollIntoView({block: 'center'});
  return true;
}"""


def _settle(page) -> None:
    """Wait until the page has loaded (images included) and MathJax has typeset its math."""
    page.wait_for_load_state("load")
    if page.locator(".math").count():
        page.wait_for_function(MATHJAX_DONE_JS)


def _ids(site: Path, rel: str, cache: dict) -> set[str]:
    if rel not in cache:
        text = (site / rel).read_text(encoding="utf-8")
        cache[rel] = set(re.findall(r'\sid="([^"]+)"', text))
    return cache[rel]


def test_every_page_is_reachable_and_loads_everything_locally(book_site, crawl):
    _, pages = book_site
    seen, problems = crawl
    expected = {p.with_suffix(".html").as_posix() for p in pages.all()} | {"index.html"}
    assert expected <= set(seen), f"pages not linked from the book: {expected - set(seen)}"
    assert len(pages.lectures) >= 9 and pages.assignments and pages.docs
    assert not problems, "\n".join(problems)


def test_no_broken_internal_link_or_missing_image(book_site, server, crawl):
    site, _ = book_site
    seen, _ = crawl
    broken, ids = [], {}
    for rel, info in seen.items():
        for image in info["images"]:
            if not image["ok"]:
                broken.append(f"{rel}: image did not load: {image['src']}")
        for link in info["links"]:
            if not link.startswith(server):
                continue
            parts = urllib.parse.urlsplit(link)
            path = urllib.parse.unquote(parts.path[1:]) or "index.html"
            if path.endswith("/"):
                path += "index.html"
            if not (site / path).is_file():
                broken.append(f"{rel}: link to a missing file: {link}")
            elif parts.fragment and path.endswith(".html"):
                if urllib.parse.unquote(parts.fragment) not in _ids(site, path, ids):
                    broken.append(f"{rel}: link to a missing anchor: {link}")
    assert not broken, "\n".join(broken)


def test_pages_read_as_prose_without_code_or_tracebacks(crawl):
    seen, _ = crawl
    found = []
    for rel, info in seen.items():
        if "display(Markdown(" in info["visible"]:
            found.append(f"{rel}: shows `display(Markdown(` without a click")
        if TRACEBACK in info["text"] or info["tracebacks"]:
            found.append(f"{rel}: holds a Python traceback")
        if "CellExecutionError" in info["text"]:
            found.append(f"{rel}: holds a CellExecutionError")
    assert not found, "\n".join(found)


def test_every_lecture_page_has_a_figure_and_rendered_math(book_site, crawl):
    _, pages = book_site
    seen, _ = crawl
    without, math = [], 0
    for lecture in pages.lectures:
        info = seen[lecture.with_suffix(".html").as_posix()]
        if not [i for i in info["images"] if i["output"] and i["ok"]]:
            without.append(lecture.as_posix())
        math += info["math"]
    assert not without, f"lecture pages without a figure: {without}"
    assert math > 0, "no lecture page shows math typeset by MathJax"


def test_answers_are_collapsed_with_their_code_and_outputs(book_site, crawl):
    _, pages = book_site
    seen, _ = crawl
    for lecture in pages.lectures:
        info = seen[lecture.with_suffix(".html").as_posix()]
        assert info["answers"] > 0, f"{lecture}: no collapsed answer"
        assert info["answerCellsInside"] == info["answerCells"], (
            f"{lecture}: {info['answerCells'] - info['answerCellsInside']} answer cell(s) "
            "outside their answer's toggle"
        )
        # The notebook's "Computed answer" toggle is unwrapped: no toggle inside the toggle.
        assert info["answerOutputToggles"] == 0, f"{lecture}: an answer's output is a toggle"


def test_a_collapsed_answer_opens_on_click(book_site, server, browser, shots):
    _, pages = book_site
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    for lecture in pages.lectures:
        page.goto(server + lecture.with_suffix(".html").as_posix())
        answer = page.locator("details.cnn-answer:has(.cell_output)").first
        if answer.count():
            break
    else:
        pytest.fail("no lecture has an answer with a computed output")
    output = answer.locator(".cell_output").first
    assert answer.get_attribute("open") is None
    assert not output.is_visible(), "an answer's output shows before its toggle is opened"
    answer.locator("summary").first.click()
    output.wait_for(state="visible")
    assert answer.get_attribute("open") is not None
    answer.screenshot(path=str(shots / "answer_opened.png"))
    context.close()


def test_search_finds_im2col(server, browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server + "search.html?q=im2col")
    page.locator("#search-results li").first.wait_for()
    hits = page.eval_on_selector_all("#search-results li a", "as => as.map(a => a.href)")
    context.close()
    assert any("lectures/05_im2col" in hit or "im2col" in hit for hit in hits), hits


def test_launch_and_download_buttons_of_notebook_pages(root, book_site, server, crawl):
    from book.stage import binder_repo

    site, pages = book_site
    seen, _ = crawl
    repo = binder_repo((root / "README.md").read_text(encoding="utf-8"))
    for rel in pages.lectures + pages.assignments:
        links = seen[rel.with_suffix(".html").as_posix()]["links"]
        launch = f"https://mybinder.org/v2/gh/{repo}/HEAD?urlpath=lab/tree/{rel.as_posix()}"
        assert launch in links, f"{rel}: no Binder button for {launch}"
        download = f"{server}_sources/{rel.as_posix()}"
        assert download in links, f"{rel}: no download link {download}"
        assert (site / "_sources" / rel).read_bytes() == (root / rel).read_bytes(), (
            f"{rel}: the download is not the committed notebook"
        )


def test_no_solution_or_hidden_test_anywhere_in_the_site(root, book_site, crawl):
    site, _ = book_site
    seen, _ = crawl
    lines = solution_lines(root)
    assert len(lines) >= 10, f"too few solution lines found to check: {lines}"
    texts = {rel: _squash(info["text"]) for rel, info in seen.items()}
    for path in site.rglob("*"):
        if path.suffix == ".ipynb":
            nb = json.loads(path.read_text(encoding="utf-8"))
            texts[path.relative_to(site).as_posix()] = _squash(
                json.dumps([c.get("source") for c in nb["cells"]], ensure_ascii=False)
                + " ".join("".join(c.get("source", "")) for c in nb["cells"])
            )
        elif path.suffix in {".js", ".txt", ".md", ".html"} and "mathjax" not in path.parts:
            texts.setdefault(
                path.relative_to(site).as_posix(),
                _squash(path.read_text(encoding="utf-8", errors="replace")),
            )
    leaks = []
    for rel, text in texts.items():
        for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS"):
            if marker in text:
                leaks.append(f"{rel}: contains {marker!r}")
        for where, line in lines.items():
            if _squash(line) in text:
                leaks.append(f"{rel}: contains the solution line {line!r} ({where})")
    assert not leaks, "\n".join(leaks)


def test_screenshots_of_five_pages(book_site, server, browser, shots):
    _, pages = book_site
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)

    def lecture(number: str) -> str:
        return next(p for p in pages.lectures if p.name.startswith(number)).with_suffix(".html")

    targets = {
        "1_landing": ("index.html", None),
        "2_lecture2_explorer": (lecture("02").as_posix(), "Explore"),
        "3_lecture7_gradcam": (lecture("07").as_posix(), "Grad-CAM"),
        "4_assignment": (pages.assignments[0].with_suffix(".html").as_posix(), None),
        "5_reproduction": ("docs/reproduction.html", None),
    }
    for name, (rel, heading) in targets.items():
        page.goto(server + rel)
        _settle(page)
        if heading:
            shown = page.evaluate(FIRST_FIGURE_AFTER_JS, heading)
            assert shown, f"{rel}: no figure after the heading {heading!r}"
        page.screenshot(path=str(shots / f"{name}.png"))
        assert (shots / f"{name}.png").stat().st_size > 10_000
    context.close()
