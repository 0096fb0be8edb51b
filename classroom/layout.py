"""Where the classroom's files live, and the state file that the hub's configuration reads.

Everything is under one prefix (default ``/srv/cnn-course``), so removing the classroom is
removing that folder and the accounts named in its state file::

    python/      a copy of the course's Python that every user can run (only when needed)
    env/         the course environment (venv): every user runs it, nobody but root writes it
    lib/         the helper package ``cnncourse`` and MNIST, what students' kernels import
    exchange/    nbgrader's exchange (release, submit, collect, feedback), mode 1777
    home/<user>  the students' and instructors' homes, mode 0700
    grader/      home of the grader account, mode 0700; grader/course/ is the course folder
    proxy/       configurable-http-proxy from npm
    hub/         root only: the hub's configuration, database, secrets, log, state
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PREFIX = Path("/srv/cnn-course")
COURSE_ID = "cnn-course"
SERVICE_NAME = "cnn-course"  # nbgrader wants the Formgrader's service named like the course
FORMGRADE_GROUP = f"formgrade-{COURSE_ID}"  # nbgrader's convention for its course list
MARKER = ".cnn-course-classroom"  # a prefix without it is never deleted


@dataclass(frozen=True)
class Layout:
    """The folders of one classroom."""

    prefix: Path

    @property
    def python(self) -> Path:
        return self.prefix / "python"

    @property
    def env(self) -> Path:
        return self.prefix / "env"

    @property
    def lib(self) -> Path:
        return self.prefix / "lib"

    @property
    def exchange(self) -> Path:
        return self.prefix / "exchange"

    @property
    def homes(self) -> Path:
        return self.prefix / "home"

    @property
    def grader_home(self) -> Path:
        return self.prefix / "grader"

    @property
    def course(self) -> Path:
        return self.grader_home / "course"

    @property
    def proxy(self) -> Path:
        return self.prefix / "proxy"

    @property
    def hub(self) -> Path:
        return self.prefix / "hub"

    @property
    def state_file(self) -> Path:
        return self.hub / "classroom.json"

    def home_of(self, user: str) -> Path:
        return self.homes / user

    def site_packages(self) -> Path:
        """The environment's site-packages folder (it must exist)."""
        found = sorted((self.env / "lib").glob("python3*/site-packages"))
        if not found:
            raise FileNotFoundError(f"no site-packages under {self.env}/lib")
        return found[0]


def read_state(layout: Layout) -> dict:
    """The state ``up`` wrote (ports, accounts it created, ...); {} when there is none."""
    try:
        return json.loads(layout.state_file.read_text())
    except FileNotFoundError:
        return {}


def write_state(layout: Layout, state: dict) -> None:
    """Write the state file (root only), atomically."""
    layout.hub.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.hub, 0o700)
    tmp = layout.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.chmod(tmp, 0o600)
    tmp.replace(layout.state_file)
