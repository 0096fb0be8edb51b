"""What Python a sandboxed kernel sees: the standard library and only the installed
distributions its notebook may use, with their dependencies.

A library that holds a ready-made answer (SciPy's correlation for a numpy convolution,
PyTorch, TensorFlow, JAX) is not *watched* while a student's code runs: it is *absent* from
the kernel's file system. :func:`site_entries` lists the top-level entries of the
environment's ``site-packages`` that the sandbox binds back (packages, modules, their
``.dist-info``), computed from each allowed distribution's metadata: its requirements
(transitively) and its ``RECORD``. Every other ``site-packages`` or ``dist-packages`` folder on
the machine (the base interpreter's, Debian's) is hidden whole, so adding a path to
``sys.path`` finds nothing either.

The course's own package is never taken from this listing: the sandbox binds the helper
modules a notebook may import one by one (see :mod:`autograder.sandbox`), so ``autograder/``
and the modules that implement graded functions are absent too.
"""

from __future__ import annotations

import glob
import importlib.metadata as metadata
import os
import re
import sys
import sysconfig
from functools import lru_cache
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

# Every kernel runs IPython's kernel, numpy and matplotlib; frameworks are added per notebook.
KERNEL_ROOTS = ("ipykernel", "numpy", "matplotlib", "tqdm", "ipywidgets", "threadpoolctl")
# The course's own distribution: its files are bound module by module, never from here.
COURSE_DISTRIBUTION = "cnn-course"


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them (``tensorflow_cpu`` == ``tensorflow-cpu``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def site_packages() -> list[Path]:
    """The running environment's package folders: its ``site-packages`` (purelib and
    platlib), and any other folder on ``sys.path`` that holds installed distributions (a
    ``.pth`` file may add one, e.g. a grading worker's venv that shares a course venv's
    packages)."""
    paths = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")}
    stdlib = {Path(sysconfig.get_paths()[key]).resolve() for key in ("stdlib", "platstdlib")}
    for entry in sys.path:
        if not entry or not os.path.isabs(entry):
            continue
        path = Path(entry).resolve()
        if path in stdlib or path.name not in ("site-packages", "dist-packages"):
            continue  # e.g. a package's own vendored folder inside site-packages
        if path.is_dir() and any(path.glob("*.dist-info")):
            paths.add(path)
    return sorted(p for p in paths if p.is_dir())


@lru_cache(maxsize=1)
def _installed() -> dict[str, metadata.Distribution]:
    """Distributions installed in this environment's site-packages, by canonical name."""
    found: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions(path=[str(p) for p in site_packages()]):
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonical(name), dist)
    return found


def _requirements(dist: metadata.Distribution) -> list[str]:
    """Names of what ``dist`` needs on this platform (extras are not installed for it)."""
    names = []
    for text in dist.requires or []:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        names.append(canonical(requirement.name))
    return names


def closure(roots: tuple[str, ...]) -> set[str]:
    """Canonical names of ``roots`` and everything they need, that are installed here."""
    installed = _installed()
    todo = [canonical(r) for r in roots]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in installed:
            continue
        seen.add(name)
        todo.extend(_requirements(installed[name]))
    return seen


def _top_level(dist: metadata.Distribution) -> set[str]:
    """The top-level names ``dist`` installed into site-packages (folders and files)."""
    entries = set()
    for file in dist.files or []:
        parts = Path(file).parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].startswith("/"):
            continue
        entries.add(parts[0])
    return entries


@lru_cache(maxsize=32)
def site_entries(roots: tuple[str, ...]) -> tuple[Path, ...]:
    """Paths of the site-packages entries a kernel allowed ``roots`` (plus the kernel's own
    :data:`KERNEL_ROOTS`) may see, sorted. The course's distribution contributes only its
    editable-install hooks (its packages are bound elsewhere, module by module)."""
    installed = _installed()
    names = closure(KERNEL_ROOTS + tuple(roots))
    names.discard(canonical(COURSE_DISTRIBUTION))
    found: set[Path] = set()
    for name in names:
        dist = installed[name]
        base = Path(str(dist.locate_file(""))).resolve()
        for entry in _top_level(dist):
            path = base / entry
            if path.exists():
                found.add(path)
    course = installed.get(canonical(COURSE_DISTRIBUTION))
    if course is not None:
        base = Path(str(course.locate_file(""))).resolve()
        for entry in _top_level(course):
            if entry.startswith("__editable__") and (base / entry).is_file():
                found.add(base / entry)  # the hook that maps `cnncourse` to the checkout
    found.update(_path_files())
    return tuple(sorted(found))


def _path_files() -> set[Path]:
    """The ``.pth`` files of this environment that only add other package folders to
    ``sys.path`` (a grading worker's venv that shares a course venv's packages): without
    them the kernel's interpreter would not find the entries bound from those folders. A
    ``.pth`` line that runs code (``import ...``) keeps its file out."""
    folders = {str(p) for p in site_packages()}
    found = set()
    for key in ("purelib", "platlib"):
        for pth in Path(sysconfig.get_paths()[key]).glob("*.pth"):
            lines = [
                line.strip()
                for line in pth.read_text(encoding="utf-8", errors="replace").splitlines()
                if line.strip() and not line.startswith("#")
            ]
            if lines and all(str(Path(line).resolve()) in folders for line in lines):
                found.add(pth.resolve())
    return found


def other_package_folders() -> list[Path]:
    """Every other folder on this machine where Python finds installed packages: the base
    interpreter's site-packages and the system's ``dist-packages`` (hidden whole)."""
    mine = set(site_packages())
    patterns = [
        f"{sys.base_prefix}/lib/python3*/site-packages",
        f"{sys.base_prefix}/lib/python3*/dist-packages",
        "/usr/lib/python3*/site-packages",
        "/usr/lib/python3*/dist-packages",
        "/usr/lib/python3/dist-packages",
        "/usr/local/lib/python3*/site-packages",
        "/usr/local/lib/python3*/dist-packages",
        "/usr/share/pyshared",
    ]
    found = set()
    for pattern in patterns:
        for name in glob.glob(pattern):
            path = Path(name).resolve()
            if path.is_dir() and path not in mine:
                found.add(path)
    return sorted(found)
