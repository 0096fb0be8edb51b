"""Generate ``assignments/`` (the student release) from ``solutions/`` with nbgrader.

nbgrader's own ``GenerateAssignment`` converter does the work (solution code replaced by
the stub, hidden tests removed, test cells locked, checksums recorded). It runs in a
scratch course directory so that releasing never touches a real gradebook.
"""

from __future__ import annotations

import filecmp
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.apps.api import NbGraderAPI

from . import course

LEAK_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")

# What JupyterLab writes into a notebook when it runs on ipykernel's default kernel with the
# course's Python (3.11.7: Makefile's python3.11, environment.yml's python=3.11.7). A notebook
# saved with exactly these opens unmodified (not marked unsaved) in JupyterLab: it rewrites
# both from the kernel it starts and marks the notebook dirty when either differs.
COURSE_PYTHON = "3.11.7"
JUPYTERLAB_KERNELSPEC = {
    "display_name": "Python 3 (ipykernel)",
    "language": "python",
    "name": "python3",
}
JUPYTERLAB_LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
    "version": COURSE_PYTHON,
}


def normalise_kernelspec(nb: nbformat.NotebookNode) -> bool:
    """Give ``nb`` :data:`JUPYTERLAB_KERNELSPEC` and :data:`JUPYTERLAB_LANGUAGE_INFO`;
    True when its metadata changed.

    A notebook with no kernelspec or the ``python3`` kernel gets them; one that names any
    other kernel (for example a grading fixture that fakes one) is left as it is.
    """
    spec = nb.metadata.get("kernelspec")
    if spec is not None and spec.get("name") != JUPYTERLAB_KERNELSPEC["name"]:
        return False
    changed = False
    for key, value in (
        ("kernelspec", JUPYTERLAB_KERNELSPEC),
        ("language_info", JUPYTERLAB_LANGUAGE_INFO),
    ):
        if nb.metadata.get(key) != value:
            nb.metadata[key] = nbformat.from_dict(value)
            changed = True
    return changed


def normalise_kernelspecs(folder: Path) -> list[Path]:
    """Apply :func:`normalise_kernelspec` to every notebook under ``folder``; returns the
    notebooks it changed."""
    changed = []
    for path in sorted(folder.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        nb = nbformat.read(path, as_version=4)
        if normalise_kernelspec(nb):
            nbformat.write(nb, path)
            changed.append(path)
    return changed


class ReleaseError(RuntimeError):
    """nbgrader could not generate an assignment."""


def _quiet_api(config) -> NbGraderAPI:
    api = NbGraderAPI(config=config)
    api.log.setLevel(logging.ERROR)
    return api


def generate_release(
    out_dir: Path, ids: list[str] | None = None, db_url: str | None = None
) -> Path:
    """Run nbgrader ``generate_assignment`` for ``ids`` and put the result in ``out_dir``.

    ``db_url`` names the gradebook that records the assignments (a scratch SQLite file
    by default). Returns ``out_dir``.
    """
    ids = ids or course.assignment_ids()
    with tempfile.TemporaryDirectory(prefix="cnn-release-") as tmp:
        scratch = Path(tmp)
        shutil.copytree(course.solutions_dir(), scratch / course.SOURCE_DIR_NAME)
        # Source and release (and so the gradebook) carry the kernel metadata JupyterLab
        # writes, so that students' notebooks open unmodified.
        normalise_kernelspecs(scratch / course.SOURCE_DIR_NAME)
        api = _quiet_api(course.course_config(scratch, db_url=db_url))
        for assignment_id in ids:
            result = api.generate_assignment(assignment_id, force=True, create=True)
            if not result["success"]:
                raise ReleaseError(
                    f"nbgrader could not generate {assignment_id}:\n{result.get('error', '')}"
                    f"\n{result.get('log', '')}"
                )
        out_dir.mkdir(parents=True, exist_ok=True)
        for assignment_id in ids:
            target = out_dir / assignment_id
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(scratch / course.RELEASE_DIR_NAME / assignment_id, target)
    return out_dir


def release(ids: list[str] | None = None) -> list[str]:
    """Regenerate ``assignments/`` in the repository; returns the assignment ids."""
    ids = ids or course.assignment_ids()
    generate_release(course.assignments_dir(), ids)
    return ids


@dataclass
class ReleaseCheck:
    """Differences between the committed release and a fresh one."""

    stale: list[str] = field(default_factory=list)  # files that differ or are missing
    extra: list[str] = field(default_factory=list)  # files that should not be there
    leaks: list[str] = field(default_factory=list)  # files carrying solution/hidden text

    @property
    def ok(self) -> bool:
        return not (self.stale or self.extra or self.leaks)

    def describe(self) -> str:
        lines = []
        for title, items in (
            ("out of date or missing", self.stale),
            ("not produced by solutions/", self.extra),
            ("leak solution or hidden-test text", self.leaks),
        ):
            if items:
                lines.append(f"{title}: " + ", ".join(items))
        if lines:
            lines.append("run `make release` to regenerate assignments/ from solutions/")
        return "\n".join(lines)


def find_leaks(release_dir: Path) -> list[str]:
    """Release files that contain any of :data:`LEAK_MARKERS`."""
    leaks = []
    for path in sorted(release_dir.rglob("*")):
        if path.is_file() and path.suffix in {".ipynb", ".py", ".md", ".txt"}:
            text = path.read_text(encoding="utf-8", errors="replace")
            if any(marker in text for marker in LEAK_MARKERS):
                leaks.append(str(path.relative_to(release_dir)))
    return leaks


def check_release() -> ReleaseCheck:
    """Compare ``assignments/`` with what nbgrader generates from ``solutions/`` now."""
    committed = course.assignments_dir()
    check = ReleaseCheck()
    with tempfile.TemporaryDirectory(prefix="cnn-release-check-") as tmp:
        fresh = generate_release(Path(tmp) / "release")
        fresh_files = {p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()}
        committed_files = (
            {p.relative_to(committed) for p in committed.rglob("*") if p.is_file()}
            if committed.is_dir()
            else set()
        )
        for rel in sorted(fresh_files):
            if rel not in committed_files or not filecmp.cmp(
                fresh / rel, committed / rel, shallow=False
            ):
                check.stale.append(str(rel))
        check.extra = sorted(str(rel) for rel in committed_files - fresh_files)
    if committed.is_dir():
        check.leaks = find_leaks(committed)
    return check
