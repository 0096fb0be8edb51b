"""Sphinx configuration of the course book (run by ``book/build.py``, not by hand).

Sphinx + myst-nb + sphinx-book-theme (the stack of Jupyter Book 1): notebooks are rendered
from the executed copies that ``book/build.py`` staged (myst-nb never executes anything), math
by a local MathJax (``jupyter-server-mathjax``), so building and reading need no network.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from book.stage import binder_repo  # noqa: E402

REPO = binder_repo((ROOT / "README.md").read_text(encoding="utf-8"))
FAST = os.environ.get("CNN_BOOK_MODE", "full") == "fast"

project = "CNNs, from numpy to Keras and PyTorch"
author = "the course's authors"
copyright = "the course's authors (MIT licence)"
language = "en"

extensions = ["myst_nb", "sphinx.ext.githubpages"]
exclude_patterns = ["**.ipynb_checkpoints"]
suppress_warnings = ["myst.header"]

# myst-nb: render what the staged copies hold; never run a kernel.
nb_execution_mode = "off"
nb_output_stderr = "remove"  # TensorFlow's log lines, progress bars
nb_merge_streams = True
nb_render_markdown_format = "myst"  # computed sentences and tables, with math
nb_ipywidgets_js: dict[str, dict] = {}  # widget views are dropped when staging; load no widget code
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

# Math: a local MathJax 2.7 (pip package jupyter-server-mathjax), copied into _static/mathjax.
MATHJAX_DIR: Path | None
try:
    import jupyter_server_mathjax

    MATHJAX_DIR = Path(jupyter_server_mathjax.__file__).parent / "static"
except ImportError:  # pragma: no cover - the book's requirements install it
    MATHJAX_DIR = None
myst_update_mathjax = False  # it writes a MathJax 3 configuration, which stops MathJax 2
mathjax3_config = None
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
mathjax2_config = {
    "tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]]},
    # the package ships MathJax's STIX-Web fonts only (as Jupyter Notebook used them)
    "HTML-CSS": {
        "availableFonts": [],
        "preferredFont": None,
        "webFont": "STIX-Web",
        "imageFont": None,
    },
}

html_theme = "sphinx_book_theme"
html_title = "CNNs, from numpy to Keras and PyTorch"
html_static_path = ["static"]
html_css_files = ["book.css"]
html_last_updated_fmt = None
html_theme_options = {
    "repository_url": f"https://github.com/{REPO}",
    "repository_branch": "HEAD",
    "path_to_docs": "",
    "use_repository_button": True,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "launch_buttons": {"binderhub_url": "https://mybinder.org", "notebook_interface": "jupyterlab"},
    "home_page_in_toc": True,
    "show_toc_level": 2,
}


def _copy_mathjax(app, exception) -> None:
    """Put MathJax into the site's ``_static/mathjax``."""
    if exception is not None or app.builder.name != "html" or MATHJAX_DIR is None:
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    if not (target / "MathJax.js").exists():
        shutil.copytree(MATHJAX_DIR, target)


def setup(app) -> None:
    app.connect("build-finished", _copy_mathjax)
