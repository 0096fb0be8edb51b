"""nbgrader configuration of the course: used by plain `nbgrader` and `jupyter lab` (Formgrader,
Assignment List, Validate) started from this folder, and by `python -m autograder`.

solutions/<assignment>/<notebook>.ipynb   nbgrader *source* (solutions + hidden tests)
assignments/<assignment>/<notebook>.ipynb  nbgrader *release* (what students get)
gradebook.db                               the gradebook (`make gradebook` fills it)
exchange/                                  nbgrader's exchange on this machine (git-ignored)
"""

import os
import stat
import sys

c = get_config()  # noqa: F821 (nbgrader injects get_config)

COURSE_ROOT = os.path.dirname(os.path.abspath(__file__))

# nbgrader runs the `alembic` command of its environment when it creates a gradebook. The
# venv's tools started without activating the venv (`.venv/bin/nbgrader`, `.venv/bin/jupyter
# lab`) do not have that bin/ on PATH: put it there, as autograder/course.py does for our CLI.
_env_bin = os.path.dirname(sys.executable)
if _env_bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _env_bin + os.pathsep + os.environ.get("PATH", "")

# Whatever the instructor presses, the course's trusted grader decides: `nbgrader autograde`
# and the Formgrader's autograde button run autograder.nbgrader_entry.TrustedAutograde (the
# sandbox, results as data, verdicts outside the kernel), not nbgrader's in-kernel Execute.
# If the grader cannot be imported, autograde refuses to run rather than fall back silently.
try:
    from autograder.nbgrader_entry import use_trusted_autograde

    use_trusted_autograde(c)
except ImportError as _error:
    c.Autograde.sanitize_preprocessors = [
        f"autograder_is_not_importable_so_autograde_refuses: {_error}"
    ]

c.CourseDirectory.course_id = "cnn-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
# Files that are never copied into a release or a grading folder.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]

# The stub students see in place of a solution.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Training cells need more than nbgrader's default of 30 s per cell.
c.Execute.timeout = 600

# Plain `nbgrader autograde`: the test cells of a release lack their hidden tests, so nbgrader's
# own OverwriteCells warns "Attribute 'checksum' ... has changed!" for every one of them on an
# untouched submission. RestoreHiddenTests puts them back silently and still warns when a
# student really edited a test cell. (`python -m autograder grade` sets its own list.)
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "autograder.feedback.RestoreHiddenTests",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Feedback never shows hidden tests, whoever makes it: plain `nbgrader generate_feedback` and
# the Formgrader's "Generate Feedback" button use this list too. RedactHiddenTests removes the
# hidden-test regions and the tracebacks of the cells that had them (the message stays).
# Students' own markdown and outputs are sanitised (no <script>, no event handlers) in the
# feedback and in the Formgrader's views of submissions.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "autograder.feedback.RedactHiddenTests",
    "nbconvert.preprocessors.sanitize.SanitizeHTML",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
c.SanitizeHTML.enabled = True  # nbconvert preprocessors are off until enabled
c.SanitizeHTML.strip = True
c.HTMLExporter.sanitize_html = True

# The exchange (release, fetch, submit, collect, feedback) in a folder of the course, so that it
# works on one machine without root; nbgrader wants it writable by everyone. On a shared
# server, point c.Exchange.root at a folder all students can reach instead.
c.Exchange.root = os.path.join(COURSE_ROOT, "exchange")
# Fetched assignments land in ./cnn-course/<assignment>/, not among the course's own folders.
c.Exchange.path_includes_course = True
if not os.path.isdir(c.Exchange.root):
    try:
        os.makedirs(c.Exchange.root)
        os.chmod(c.Exchange.root, stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO)
    except OSError:
        pass  # a read-only checkout: nbgrader says what is missing when it needs it
