"""nbgrader's own autograde, made trusted: whatever the instructor presses, the course's
grader decides.

``nbgrader autograde`` (the command line) and the Formgrader's autograde button (which calls
``NbGraderAPI.autograde``) both create nbgrader's ``Autograde`` converter. The course's
``nbgrader_config.py`` calls :func:`use_trusted_autograde`, which puts
:class:`TrustedAutograde` in its place in the two modules that create it. For every
submission nbgrader's own discovery finds (the assignment id, ``--student``, the notebook
ids, ``--force``), it runs the same pipeline as ``python -m autograder grade``: intake that
never follows a link, the sandbox, results as data, verdicts in the grader's process, the
library-call policy, the limits; it records into the course's gradebook and writes
``autograded/`` and ``feedback/`` where nbgrader's other commands read them. Grading runs in
a separate worker process, never inside the Jupyter server.

The old path, nbgrader's ``Execute`` running every test cell inside the student's kernel,
exists only behind an explicit opt-in: ``CNN_COURSE_IN_KERNEL_GRADING=1`` in the
environment, and every run then says loudly that the kernel decides the points.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path

from nbgrader.converters import Autograde as NbgraderAutograde
from nbgrader.converters.base import NbGraderException
from traitlets import Dict, Int

IN_KERNEL_ENV = "CNN_COURSE_IN_KERNEL_GRADING"
IN_KERNEL_WARNING = (
    "UNSAFE: CNN_COURSE_IN_KERNEL_GRADING=1: test cells run INSIDE the student's kernel and "
    "the kernel decides the points (a notebook can patch the checks and score full marks). "
    "Unset it to grade with the course's trusted grader."
)
GRADEBOOK_HINT = "no gradebook with this assignment yet: run `make gradebook` in the course folder"


class TrustedAutograde(NbgraderAutograde):
    """nbgrader's ``Autograde`` converter, whose conversion is the course's trusted grader."""

    jobs = Int(0, help="Submissions graded at once (0: the CPUs this process may use).").tag(
        config=True
    )
    limits = Dict({}, help="Limits (autograder.limits.Limits fields) for every notebook.").tag(
        config=True
    )

    def _pairs(self) -> list[tuple[str, str]]:
        """(assignment id, student id) of every submission nbgrader's discovery found."""
        pattern = self._format_source("(?P<assignment_id>.*)", "(?P<student_id>.*)", escape=True)
        pairs = []
        for folder in sorted(self.assignments):
            match = re.match(pattern, folder)
            if match is None:
                raise NbGraderException(f"cannot read {folder!r} as a submission folder")
            pairs.append((match.group("assignment_id"), match.group("student_id")))
        return pairs

    def start(self) -> None:
        from sqlalchemy.exc import SAWarning

        from .find import LayoutError
        from .grading import default_jobs, grade_submissions
        from .limits import Limits
        from .report import failures

        warnings.filterwarnings("ignore", category=SAWarning)
        self.init_notebooks()  # nbgrader's own discovery: which submissions to grade
        pairs = self._pairs()
        root = Path(self.coursedir.root)
        submitted = Path(self.coursedir.format_path(self.coursedir.submitted_directory, ".", "."))
        self.log.info("Grading %d submission(s) with the course's trusted grader", len(pairs))
        try:
            run = grade_submissions(
                submitted,
                root,
                db_url=self.coursedir.db_url,
                jobs=self.jobs or default_jobs(),
                limits=Limits(**self.limits),
                force=self.force,
                assignments=sorted({a for a, _ in pairs}),
                students=sorted({s for _, s in pairs}),
                progress=False,
                isolate_workers=True,
            )
        except LayoutError as exc:
            raise NbGraderException(str(exc)) from None
        for line in run.table.splitlines():
            self.log.info(line)
        problems = failures(run.results)
        if problems:
            for line in problems.splitlines():
                self.log.warning(line)
        if not run.isolated:
            self.log.warning("bubblewrap is not available: kernels ran without the sandbox")
        if not run.complete:
            raise NbGraderException("some submissions could not be graded (see above)")


class InKernelAutograde(NbgraderAutograde):
    """nbgrader's own converter (test cells run in the kernel), opted into explicitly: it
    says so at every run, and names ``make gradebook`` when the gradebook lacks the
    assignment."""

    def start(self) -> None:
        self.log.warning(IN_KERNEL_WARNING)
        super().start()

    def init_assignment(self, assignment_id: str, student_id: str) -> None:
        try:
            super().init_assignment(assignment_id, student_id)
        except NbGraderException as exc:
            if "exists in the database" in str(exc):
                self.log.error(GRADEBOOK_HINT)
            raise


def use_trusted_autograde(config) -> type:
    """Make nbgrader's autograde (command line and Formgrader) the course's trusted grader,
    unless ``CNN_COURSE_IN_KERNEL_GRADING=1`` asks for nbgrader's in-kernel path. Returns the
    converter class now in use. Called from the course's ``nbgrader_config.py``."""
    import nbgrader.apps.api as api_module
    import nbgrader.apps.autogradeapp as app_module

    if os.environ.get(IN_KERNEL_ENV) == "1":
        print(IN_KERNEL_WARNING, file=sys.stderr)
        chosen: type = InKernelAutograde
    else:
        chosen = TrustedAutograde
    app_module.Autograde = chosen
    api_module.Autograde = chosen
    return chosen
