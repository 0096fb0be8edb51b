"""Build a classroom's files: a Python and a course environment every user can run, the
student configuration, the exchange, the grader's course folder and the proxy."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from .layout import REPO, Layout

# What the grader's course folder holds: the nbgrader course (config, source, release) and the
# code its configuration and grader import. Tests, lectures, benchmarks and docs stay out.
COURSE_ITEMS = (
    "nbgrader_config.py",
    "pyproject.toml",
    "solutions",
    "assignments",
    "autograder",
    "cnncourse",
    "data",
)
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
# nbgrader's instructor tools, off for everyone using the environment, on for the grader.
INSTRUCTOR_LAB_PLUGINS = (
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:course-list",
)
INSTRUCTOR_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.course_list",
)
LAB_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"checkForUpdates": False, "fetchNews": "false"}
}


class SetupError(RuntimeError):
    """A step of the set-up failed; the message says which and what to do."""


def run_checked(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        out = (result.stdout + result.stderr).strip()[-3000:]
        raise SetupError(f"{' '.join(map(str, cmd))} failed (exit {result.returncode}):\n{out}")
    return result


def write_new(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write a file as a new inode (written beside, then renamed): a hard-linked file of a
    cloned environment (classroom/environment.py) is replaced, never changed in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    tmp.replace(path)


def write_json(path: Path, data: dict, mode: int = 0o644) -> None:
    write_new(path, (json.dumps(data, indent=2) + "\n").encode(), mode)


def readable_by_all(path: Path) -> None:
    """a+rX on a tree (files readable, folders enterable by every user)."""
    run_checked(["chmod", "-R", "a+rX", str(path)])


def install_course_library(layout: Layout) -> None:
    """``cnncourse`` and MNIST into ``lib/``, on the environment's path by a .pth file.

    Students' kernels import the helper package (its checks are the visible tests); the grader
    imports its own copy in the course folder first (PYTHONPATH)."""
    shutil.rmtree(layout.lib, ignore_errors=True)
    shutil.copytree(REPO / "cnncourse", layout.lib / "cnncourse", ignore=IGNORE)
    shutil.copytree(REPO / "data" / "mnist", layout.lib / "data" / "mnist", ignore=IGNORE)
    readable_by_all(layout.lib)
    write_new(layout.site_packages() / "cnn-course-classroom.pth", f"{layout.lib}\n".encode())


def install_student_config(layout: Layout) -> None:
    """nbgrader's course id and exchange, and the instructor tools switched off, for every
    user of the environment (its ``etc/jupyter``, on every user's Jupyter config path)."""
    etc = layout.env / "etc" / "jupyter"
    etc.mkdir(parents=True, exist_ok=True)
    config = (REPO / "classroom" / "student_nbgrader_config.py").read_bytes()
    write_new(etc / "nbgrader_config.py", config)
    off = dict.fromkeys(INSTRUCTOR_SERVER_EXTENSIONS, False)
    # config.d files are read in name order: this one after nbgrader's own nbgrader.json
    write_json(
        etc / "jupyter_server_config.d" / "zz_cnn_classroom.json",
        {"ServerApp": {"jpserver_extensions": off}},
    )
    write_json(
        etc / "labconfig" / "page_config.json",
        {"disabledExtensions": dict.fromkeys(INSTRUCTOR_LAB_PLUGINS, True)},
    )
    readable_by_all(etc)
    # JupyterLab's defaults for everyone: no "get Jupyter news?" question, no update check
    # (a classroom server may have no internet; students should not be asked).
    settings = layout.env / "share" / "jupyter" / "lab" / "settings"
    write_json(settings / "overrides.json", LAB_OVERRIDES)
    readable_by_all(settings)


def make_exchange(layout: Layout) -> None:
    """nbgrader's exchange: every user may create entries, only their own (sticky bit)."""
    layout.exchange.mkdir(parents=True, exist_ok=True)
    os.chown(layout.exchange, 0, 0)
    os.chmod(layout.exchange, 0o1777)


def make_course_folder(layout: Layout, grader: str) -> None:
    """The course folder, owned by the grader account and closed to everyone else.

    Its ``exchange`` is a link to the shared exchange: the course's own nbgrader_config.py puts
    the exchange in the course folder, which students cannot enter."""
    account = pwd.getpwnam(grader)
    course = layout.course
    if course.exists():
        shutil.rmtree(course)
    course.mkdir(parents=True)
    for name in COURSE_ITEMS:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, course / name, ignore=IGNORE)
        elif src.is_file():
            shutil.copy2(src, course / name)
    (course / "exchange").symlink_to(layout.exchange)
    jupyter = layout.grader_home / ".jupyter"
    write_json(
        jupyter / "jupyter_server_config.json",
        {
            "ServerApp": {
                "jpserver_extensions": dict.fromkeys(INSTRUCTOR_SERVER_EXTENSIONS, True),
                # the Formgrader opens in an iframe of JupyterLab (nbgrader's hub demos)
                "tornado_settings": {
                    "headers": {"Content-Security-Policy": "frame-ancestors 'self'"}
                },
            }
        },
    )
    write_json(
        jupyter / "labconfig" / "page_config.json",
        {"disabledExtensions": dict.fromkeys(INSTRUCTOR_LAB_PLUGINS, False)},
    )
    run_checked(["chown", "-R", f"{account.pw_uid}:{account.pw_gid}", str(layout.grader_home)])
    os.chmod(layout.grader_home, 0o700)
    os.chmod(course, 0o700)


def grader_env(layout: Layout, grader: str, extra: dict[str, str] | None = None) -> dict:
    """The environment variables the grader account's commands run with."""
    return {
        "HOME": str(layout.grader_home),
        "USER": grader,
        "LOGNAME": grader,
        "PATH": f"{layout.env / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(layout.course),
        "JUPYTER_CONFIG_DIR": str(layout.grader_home / ".jupyter"),
        **(extra or {}),
    }


def prepare_course(
    layout: Layout,
    grader: str,
    release: list[str],
    extra: dict,
    gradebook_all: bool = True,
    students: list | None = None,
) -> None:
    """As the grader: record the assignments in the gradebook (every one, or only those of
    ``release``) and the roster's students with their names, release ``release``."""
    account = pwd.getpwnam(grader)
    env = grader_env(layout, grader, extra)
    as_grader = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    python = str(layout.env / "bin" / "python")
    ids = [] if gradebook_all else list(release)
    run_checked(
        [python, "-m", "autograder", "gradebook", *ids], cwd=layout.course, env=env, **as_grader
    )
    if students:
        table = layout.course / "students.csv"
        with open(table, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "first_name", "last_name"])
            for person in students:
                first, _, last = person.name.rpartition(" ")
                writer.writerow([person.username, first or last, last if first else ""])
        os.chown(table, account.pw_uid, account.pw_gid)
        run_checked(
            [str(layout.env / "bin" / "nbgrader"), "db", "student", "import", str(table)],
            cwd=layout.course,
            env=env,
            **as_grader,
        )
    for assignment in release:
        run_checked(
            [str(layout.env / "bin" / "nbgrader"), "release_assignment", assignment],
            cwd=layout.course,
            env=env,
            **as_grader,
        )


def install_proxy(layout: Layout) -> None:
    """configurable-http-proxy, the version classroom/package-lock.json pins, by ``npm ci``."""
    if shutil.which("npm") is None:
        raise SetupError("npm is missing (apt-get install nodejs npm; Node 20 or later)")
    lock = (REPO / "classroom" / "package-lock.json").read_bytes()
    stamp = layout.proxy / ".installed"
    digest = hashlib.sha256(lock).hexdigest()
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return
    layout.proxy.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(REPO / "classroom" / name, layout.proxy / name)
    run_checked(
        ["npm", "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=layout.proxy,
    )
    stamp.write_text(digest + "\n")
    readable_by_all(layout.proxy)
