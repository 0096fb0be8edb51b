"""Isolate: start the student's kernel in a sandbox that shows only what a student may see.

With bubblewrap (``bwrap``) the kernel sees:

* the system and the Python environment, read-only, minus the packages its notebook's
  library-call policy forbids (hidden under empty folders, e.g. ``torch`` for the numpy
  assignments);
* the course's helper package ``cnncourse`` and its data, read-only, minus the reference
  code students must not call (``cnncourse/checks``, ``cnncourse/oracles.py``), and nothing
  else of the project: no ``autograder/``, ``solutions/``, samples, fixtures or tests;
* its working folder holding only the student's own files, a private ``/tmp`` and home,
  all in size-limited memory file systems;
* the runtime folder it shares with the grader (sockets and the result channel).

It has no network (it talks to the grader over Unix sockets) and its own process
namespace, so killing the sandbox kills everything it started. bubblewrap itself starts
with a clean environment: nothing of the grader's environment (a database URL, a secret)
is visible anywhere inside, not even in ``/proc/1/environ``.

Without bubblewrap the kernel still runs with the resource limits in its own working
folder, but it can read anything the grader's user can: the grader says so loudly.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .limits import Limits

# The only environment variables a kernel gets (everything else is dropped).
_ENV_KEEP = (
    "PATH",
    "LANG",
    "LC_ALL",
    "NBGRADER_EXECUTION",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "TF_CPP_MIN_LOG_LEVEL",
    "PYTHONHASHSEED",
    "CNN_COURSE_FAST",
    "CNN_COURSE_THREADS",
)

# Reference code of the helper package that a graded function must never be able to call.
COURSE_REFERENCE = ("checks", "oracles.py")


def bwrap_path() -> str | None:
    """The bubblewrap binary, if it exists and works here (None otherwise)."""
    if os.environ.get("CNN_GRADER_NO_BWRAP"):
        return None
    path = shutil.which("bwrap")
    if path is None:
        return None
    probe = subprocess.run(
        [path, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
        capture_output=True,
        timeout=20,
    )
    return path if probe.returncode == 0 else None


def package_dir(name: str) -> Path | None:
    """Folder of an installed package (None when it is not installed)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]).resolve()


def hidden_paths(policy: tuple[str, ...]) -> list[Path]:
    """What the sandbox hides for a notebook whose graded functions follow ``policy``."""
    from cnncourse.checks.channel import POLICY_MODULES

    hidden: list[Path] = []
    for name in policy:
        for module in POLICY_MODULES.get(name, ()):
            if module == "cnncourse":
                continue  # the notebook needs the helpers: only the reference code goes
            folder = package_dir(module)
            if folder is not None:
                hidden.append(folder)
    return hidden


def _course_dir() -> Path:
    import cnncourse

    return Path(cnncourse.__file__).resolve().parent


def _readonly_paths() -> list[Path]:
    """System and Python paths the kernel must read, plus the helper package and data."""
    paths = [Path(p) for p in ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/etc")]
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        paths.append(Path(prefix))
    course = _course_dir()
    # The package as Python imports it (an editable install points at its checkout), and
    # the bundled data next to it; never the rest of the project.
    paths += [course, course.parent / "data"]
    return [p for p in paths if p.exists()]


@dataclass
class Sandbox:
    """How to wrap a kernel command. ``workdir`` holds the student's own files."""

    workdir: Path
    runtime_dir: Path
    limits: Limits = field(default_factory=Limits)
    bwrap: str | None = None
    hidden: list[Path] = field(default_factory=list)
    isolated: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.isolated = self.bwrap is not None

    def environment(self) -> dict[str, str]:
        """The kernel's whole environment."""
        env = {k: v for k, v in os.environ.items() if k in _ENV_KEEP}
        if self.bwrap:
            home, tmp = "/tmp/home", "/tmp"
        else:
            home = str(self.runtime_dir / "home")
            tmp = str(self.runtime_dir / "tmp")
            Path(home).mkdir(parents=True, exist_ok=True)
            Path(tmp).mkdir(parents=True, exist_ok=True)
        env.update(
            HOME=home,
            TMPDIR=tmp,
            MPLCONFIGDIR=f"{home}/.matplotlib",
            MPLBACKEND="module://matplotlib_inline.backend_inline",
            PYTHONNOUSERSITE="1",
            PYTHONDONTWRITEBYTECODE="1",
        )
        return env

    def writable_places(self) -> tuple[list[Path], list[str]]:
        """Where the kernel can write, for the watchdog's disk limit: folders of the host
        (the runtime folder holds home and /tmp without bubblewrap), and the sandbox's own
        memory file systems (measured from inside, through ``/proc/PID/root``)."""
        if self.bwrap:
            return [self.runtime_dir], ["/tmp", str(self.workdir)]
        return [self.runtime_dir, self.workdir], []

    def _bwrap_args(self) -> list[str]:
        limits = self.limits
        tmp_bytes = str(limits.disk_mb * 2**20)
        args = [
            self.bwrap,
            "--die-with-parent",
            "--new-session",
            "--unshare-all",  # no network, own pid/ipc/uts namespaces
            "--proc",
            "/proc",
            "--dev",
            "/dev",
        ]
        # The kernel's /tmp first: it is a fresh memory file system, so a course or a
        # virtual environment that lives under /tmp is bound on top of it, not hidden by it.
        args += ["--size", tmp_bytes, "--tmpfs", "/tmp", "--dir", "/tmp/home"]
        for path in _readonly_paths():
            args += ["--ro-bind", str(path), str(path)]
        course = _course_dir()
        for name in COURSE_REFERENCE:
            target = course / name
            if target.is_dir():
                args += ["--tmpfs", str(target), "--remount-ro", str(target)]
            elif target.exists():
                args += ["--ro-bind", "/dev/null", str(target)]
        # Hidden folders are empty and read-only: writable tmpfs there would be storage
        # outside every disk limit.
        for path in self.hidden:
            if path.is_dir():
                args += ["--tmpfs", str(path), "--remount-ro", str(path)]
        # The student's folder is a memory file system with a size limit, like /tmp (which
        # holds the home).
        args += ["--size", tmp_bytes, "--tmpfs", str(self.workdir)]
        for entry in sorted(self.workdir.rglob("*")):
            if entry.is_file() and not entry.is_symlink():
                args += ["--ro-bind", str(entry), str(entry)]
        args += ["--bind", str(self.runtime_dir), str(self.runtime_dir)]
        args += ["--chdir", str(self.workdir), "--"]
        return args

    def wrap(self, kernel_cmd: list[str]) -> list[str]:
        """The full command: a clean environment, limits, (if available) bubblewrap, kernel."""
        limits = self.limits
        data_bytes = limits.memory_mb * 2**20
        env = ["env", "-i"] + [f"{k}={v}" for k, v in self.environment().items()]
        cmd = env + [
            "prlimit",
            f"--data={data_bytes}:{data_bytes}",
            f"--fsize={limits.file_size_mb * 2**20}",
            f"--nproc={limits.max_processes * 4}",
            "--core=0",
            "--",
        ]
        if self.bwrap:
            cmd += self._bwrap_args()
        return cmd + kernel_cmd
