"""A Python and a course environment that every user of the machine can run.

Two ways to make the environment, same packages:

* ``install``: ``classroom/install_env.sh`` (the Makefile's steps: CPU torch first, then
  requirements.txt and classroom/requirements.txt with constraints.txt), about 3 GiB
  downloaded and unpacked; measured here 286 s. deploy/image/Dockerfile runs the same script.
* ``clone`` (default when the course's ``.venv`` is on the same file system): the ``.venv``
  that ``make`` installed from the same pins, hard-linked file by file (no copy, seconds),
  minus its editable link to the checkout; its scripts get the new interpreter, then pip adds
  classroom/requirements.txt. Files are never changed in place afterwards (new files are
  written beside and renamed), so the ``.venv`` is left as it was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .install import SetupError, readable_by_all, run_checked
from .layout import REPO, Layout

ENV_INPUTS = (
    "requirements.txt",
    "constraints.txt",
    "classroom/requirements.txt",
    "classroom/install_env.sh",
)
PY = f"python{sys.version_info.major}.{sys.version_info.minor}"


def runs_for_everyone(python: Path) -> bool:
    """Whether an unprivileged user (``nobody``) can start this Python."""
    try:
        result = subprocess.run(
            [str(python), "-c", "import ssl, sqlite3"], user="nobody", capture_output=True
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def shared_python(layout: Layout, base_prefix: Path | None = None) -> Path:
    """A Python every user can run, of the course's version.

    The course venv's own base Python when ``nobody`` can run it; else (pyenv under /root,
    mode 0700, on this project's machines) a copy of that installation under the prefix,
    without its site-packages and tests (about 100 MB), its library path made relative to
    the binary (patchelf: the original names /root/.pyenv/.../lib)."""
    base_prefix = Path(base_prefix or sys.base_prefix)
    base = base_prefix / "bin" / PY
    if runs_for_everyone(base):
        return base
    copy = layout.python / "bin" / PY
    if copy.exists() and runs_for_everyone(copy):
        return copy
    if shutil.which("patchelf") is None:
        raise SetupError(
            f"{base} cannot be run by other users, and patchelf (apt-get install patchelf) is "
            "missing to make a copy that can; or pass --python with a Python everyone can run"
        )
    shutil.rmtree(layout.python, ignore_errors=True)
    (layout.python / "bin").mkdir(parents=True)
    shutil.copy2(base, copy)
    for link in ("python3", "python"):
        (layout.python / "bin" / link).symlink_to(PY)
    stdlib = base_prefix / "lib" / PY

    def leave_out(directory: str, names: list[str]) -> list[str]:
        skip = {"__pycache__"} | ({"site-packages", "test"} if Path(directory) == stdlib else set())
        return [n for n in names if n in skip]

    shutil.copytree(base_prefix / "lib", layout.python / "lib", symlinks=True, ignore=leave_out)
    (layout.python / "lib" / PY / "site-packages").mkdir(exist_ok=True)
    if (base_prefix / "include").is_dir():
        shutil.copytree(base_prefix / "include", layout.python / "include", symlinks=True)
    run_checked(["patchelf", "--set-rpath", "$ORIGIN/../lib", str(copy)])
    readable_by_all(layout.python)
    if not runs_for_everyone(copy):
        raise SetupError(f"the copy {copy} still cannot be run by other users")
    return copy


def env_inputs_digest() -> str:
    """What decides the environment's contents (pins and install script)."""
    digest = hashlib.sha256()
    for name in ENV_INPUTS:
        digest.update((REPO / name).read_bytes())
    return digest.hexdigest()


def up_to_date(layout: Layout) -> bool:
    stamp = layout.env / ".installed"
    return stamp.is_file() and stamp.read_text().split()[:1] == [env_inputs_digest()]


def same_file_system(a: Path, b: Path) -> bool:
    return a.exists() and b.exists() and a.stat().st_dev == b.stat().st_dev


def install_env(layout: Layout, python: Path) -> None:
    """The course environment, by classroom/install_env.sh (downloads and unpacks it all)."""
    run_checked(["bash", str(REPO / "classroom" / "install_env.sh"), str(layout.env), str(python)])


def _script_for(env: Path, src: Path, old_python: str) -> bytes | None:
    """A console script of the old venv with the new venv's interpreter, or None when
    ``src`` is not a script that names the old interpreter."""
    data = src.read_bytes()
    first, sep, rest = data.partition(b"\n")
    if not first.startswith(b"#!") or old_python.encode() not in first:
        return None
    return first.replace(old_python.encode(), str(env / "bin" / "python").encode()) + sep + rest


def clone_env(layout: Layout, python: Path, venv: Path) -> None:
    """The course environment as hard links to ``venv``'s files (see the module docstring)."""
    env = layout.env
    shutil.rmtree(env, ignore_errors=True)
    run_checked([str(python), "-m", "venv", "--without-pip", str(env)])
    for name in ("lib", "share", "etc", "include"):
        if (venv / name).is_dir() and not (venv / name).is_symlink():
            run_checked(["cp", "-al", f"{venv / name}/.", str(env / name)])
    site = env / "lib" / PY / "site-packages"
    for leftover in [*site.glob("__editable__*"), *site.glob("cnn_course-*.dist-info")]:
        # make's editable install of this checkout: not for students
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    old_python = str(venv / "bin" / "python")
    for src in sorted((venv / "bin").iterdir()):
        target = env / "bin" / src.name
        if src.name.startswith(("python", "activate", "Activate")) or target.exists():
            continue
        if src.is_file() and (script := _script_for(env, src, old_python)) is not None:
            target.write_bytes(script)
            os.chmod(target, 0o755)
    run_checked([str(env / "bin" / "python"), "-c", "import jupyter_server, nbgrader, numpy"])


def make_env(layout: Layout, python: Path, venv: Path | None) -> str:
    """The course environment, cloned from ``venv`` when it can be (``venv`` given and on the
    prefix's file system), else installed; then classroom/requirements.txt. Returns how it
    was made ("up to date", "cloned from ...", "installed")."""
    if up_to_date(layout):
        return "up to date"
    layout.prefix.mkdir(parents=True, exist_ok=True)
    if venv is not None and same_file_system(venv, layout.prefix):
        clone_env(layout, python, venv)
        how = f"cloned from {venv} (hard links)"
    else:
        install_env(layout, python)
        how = "installed"
    run_checked(
        [str(layout.env / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        + ["-r", str(REPO / "classroom" / "requirements.txt")]
        + ["-c", str(REPO / "constraints.txt")]
    )
    readable_by_all(layout.env)
    (layout.env / ".installed").write_text(f"{env_inputs_digest()} {how}\n")
    return how
