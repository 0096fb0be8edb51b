"""Where the course's files are and how nbgrader is configured for them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR_NAME = "solutions"
RELEASE_DIR_NAME = "assignments"
CONFIG_FILE = PROJECT_ROOT / "nbgrader_config.py"


def ensure_env_bin_on_path() -> None:
    """nbgrader runs the ``alembic`` command of its environment: put that bin/ on PATH
    (it is missing when the venv's python is called without activating the venv)."""
    env_bin = str(Path(sys.executable).parent)
    if env_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = env_bin + os.pathsep + os.environ.get("PATH", "")


ensure_env_bin_on_path()


def project_root() -> Path:
    """The course repository (``$CNN_COURSE_ROOT`` overrides, for tests)."""
    return Path(os.environ.get("CNN_COURSE_ROOT", PROJECT_ROOT)).resolve()


def solutions_dir(root: Path | None = None) -> Path:
    return (root or project_root()) / SOURCE_DIR_NAME


def assignments_dir(root: Path | None = None) -> Path:
    return (root or project_root()) / RELEASE_DIR_NAME


def assignment_ids(root: Path | None = None) -> list[str]:
    """Assignments that have a source folder with at least one notebook, sorted."""
    src = solutions_dir(root)
    if not src.is_dir():
        return []
    return sorted(p.name for p in src.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def config_file() -> Path:
    """The course's ``nbgrader_config.py`` (of ``$CNN_COURSE_ROOT`` when it has one)."""
    candidate = project_root() / CONFIG_FILE.name
    return candidate if candidate.is_file() else CONFIG_FILE


def load_course_config(path: Path | None = None) -> Config:
    """The course's ``nbgrader_config.py`` (or the file ``path``) as a traitlets Config."""
    path = Path(path) if path is not None else config_file()
    loader = PyFileConfigLoader(path.name, path=str(path.parent))
    return loader.load_config()


def course_config(
    course_root: Path, db_url: str | None = None, config_path: Path | None = None, **extra: Config
) -> Config:
    """Course config pointed at ``course_root`` (a scratch course directory)."""
    config = load_course_config(config_path)
    config.CourseDirectory.root = str(course_root)
    config.CourseDirectory.db_url = db_url or f"sqlite:///{course_root / 'gradebook.db'}"
    # a scratch course has an exchange of its own, so nbgrader finds it (it says so loudly
    # when the folder is missing or not writable)
    exchange = course_root / "exchange"
    exchange.mkdir(parents=True, exist_ok=True)
    config.Exchange.root = str(exchange)
    for key, value in extra.items():
        config[key] = value
    return config
