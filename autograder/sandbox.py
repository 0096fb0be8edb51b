"""Isolate: start the student's kernel in a sandbox that shows only what a student may see.

With bubblewrap (``bwrap``) the kernel sees:

* the system, read-only, with every Python package folder but the environment's own hidden
  (the base interpreter's site-packages, Debian's dist-packages);
* of the environment's ``site-packages``, only the distributions its notebook may use
  (:mod:`autograder.python_view`): a library that holds a ready-made answer (SciPy, PyTorch,
  TensorFlow, JAX for the numpy assignments) is *absent*, not watched;
* of the course's helper package, only the modules its notebook may import (set-up, data,
  figures; see :func:`cnncourse.checks.registry.kernel_imports`): never the checks, the
  oracles or a module that implements a graded function, and nothing else of the project
  (no ``autograder/``, ``solutions/``, samples, fixtures or tests);
* the digits it may train on (the fast-mode subset of MNIST, a folder the grader prepared;
  never the digits the grader measures accuracy on);
* its working folder holding only the student's own files, a private ``/tmp`` and home, all
  in size-limited memory file systems;
* two folders it shares with the grader: ``ipc`` (the kernel's sockets) and ``channel``
  (requests and results). They are mount points inside the sandbox, so the kernel can add
  entries to them but cannot replace or move them, and the grader touches their entries only
  through file descriptors it opened itself (:mod:`autograder.collect`).

It runs as an unprivileged user (uid 65534 in its own user namespace, no capabilities), with
no network (it talks to the grader over Unix sockets), its own process namespace (killing the
sandbox kills everything it started) and, where the grader may create one, a control group
with its CPU share (:mod:`autograder.cpu_share`). bubblewrap itself starts with a clean
environment: nothing of the grader's environment (a database URL, a secret) is visible
anywhere inside, not even in ``/proc/1/environ``.

Without bubblewrap the kernel still runs with the resource limits in its own working
folder, but it can read anything the grader's user can: the grader says so loudly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import python_view
from .cpu_share import CpuShare
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
# Where the training digits appear inside the sandbox (cnncourse.data reads DATA_DIR_ENV).
SANDBOX_DATA_DIR = "/cnn-course-data"
DATA_DIR_ENV = "CNN_COURSE_DATA_DIR"
# The unprivileged user a kernel runs as inside its user namespace ("nobody").
KERNEL_UID = 65534


def bwrap_path() -> str | None:
    """The bubblewrap binary, if it exists and works here (None otherwise)."""
    if os.environ.get("CNN_GRADER_NO_BWRAP"):
        return None
    path = shutil.which("bwrap")
    if path is None:
        return None
    probe = subprocess.run(
        [path, "--ro-bind", "/", "/", "--unshare-all", "--unshare-user", "--die-with-parent"]
        + ["--uid", str(KERNEL_UID), "--gid", str(KERNEL_UID), "true"],
        capture_output=True,
        timeout=20,
    )
    return path if probe.returncode == 0 else None


def course_dir() -> Path:
    """The helper package's folder as Python imports it (an editable install points at the
    checkout, a wheel at site-packages)."""
    import cnncourse

    return Path(cnncourse.__file__).resolve().parent


def _system_paths() -> list[Path]:
    """System folders the kernel reads (Python's own install among them), read-only."""
    paths = [Path(p) for p in ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/etc")]
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        paths.append(Path(prefix))
    # package folders outside the prefixes (their allowed entries are bound one by one)
    paths += [p for p in python_view.site_packages() if not any(p.is_relative_to(q) for q in paths)]
    return [p for p in paths if p.exists()]


@dataclass
class KernelView:
    """What a kernel may import: framework distributions (with what they need) and helper
    modules of the course (file names without ``.py``)."""

    libraries: tuple[str, ...] = ()
    course_modules: tuple[str, ...] = ("__init__", "runtime", "data", "plots", "testing")

    @classmethod
    def for_notebook(cls, notebook: str) -> KernelView:
        from cnncourse.checks.registry import kernel_imports

        libraries, modules = kernel_imports(notebook)
        return cls(tuple(libraries), tuple(modules))

    def site_entries(self) -> tuple[Path, ...]:
        return python_view.site_entries(self.libraries)

    def course_files(self) -> list[Path]:
        folder = course_dir()
        files = [folder / f"{name}.py" for name in self.course_modules]
        return [f for f in files if f.is_file()]


@dataclass
class Sandbox:
    """How to wrap a kernel command. ``workdir`` holds the student's own files;
    ``runtime_dir`` holds what the grader and the kernel share (see :meth:`shared`)."""

    workdir: Path
    runtime_dir: Path
    limits: Limits = field(default_factory=Limits)
    bwrap: str | None = None
    view: KernelView = field(default_factory=KernelView)
    data_dir: Path | None = None  # the digits the kernel may train on (read-only)
    cpu_share: CpuShare | None = None
    isolated: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.isolated = self.bwrap is not None

    @property
    def ipc_dir(self) -> Path:
        return self.runtime_dir / "ipc"

    @property
    def channel_dir(self) -> Path:
        return self.runtime_dir / "channel"

    @property
    def connection_file(self) -> Path:
        return self.runtime_dir / "kernel.json"

    def prepare(self) -> None:
        """Create the shared folders (owned by the grader; the kernel adds entries only)."""
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        for folder in (self.ipc_dir, self.channel_dir):
            folder.mkdir(exist_ok=True)
            # the kernel's unprivileged user maps to the grader's user outside, so plain
            # owner permissions suffice; nobody else on the host may look in
            os.chmod(folder, 0o700)

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
        if self.data_dir is not None:
            env[DATA_DIR_ENV] = SANDBOX_DATA_DIR if self.bwrap else str(self.data_dir)
        return env

    def writable_places(self) -> tuple[list[Path], list[str]]:
        """Where the kernel can write, for the watchdog's disk limit: folders of the host,
        and the sandbox's own memory file systems (measured from inside, through
        ``/proc/PID/root``)."""
        if self.bwrap:
            return [self.ipc_dir, self.channel_dir], ["/tmp", str(self.workdir)]
        return [self.runtime_dir, self.workdir], []

    def _python_args(self) -> list[str]:
        """Hide every package folder but the allowed entries of the environment's own, and
        of the helper package only the modules this notebook may import."""
        args: list[str] = []
        for folder in python_view.other_package_folders():
            args += ["--tmpfs", str(folder), "--remount-ro", str(folder)]
        entries = self.view.site_entries()
        package = course_dir()
        inside = False
        for folder in python_view.site_packages():
            args += ["--tmpfs", str(folder)]
            for entry in entries:
                if entry.parent == folder:
                    args += ["--ro-bind", str(entry), str(entry)]
            if package.parent == folder:  # an installed (not editable) course package
                args += self._course_args(package)
                inside = True
            args += ["--remount-ro", str(folder)]
        if not inside:
            args += self._course_args(package)
        return args

    def _course_args(self, package: Path) -> list[str]:
        args = ["--tmpfs", str(package)]
        for path in self.view.course_files():
            args += ["--ro-bind", str(path), str(path)]
        return args + ["--remount-ro", str(package)]

    def _bwrap_args(self) -> list[str]:
        limits = self.limits
        tmp_bytes = str(limits.disk_mb * 2**20)
        args = [
            str(self.bwrap),
            "--die-with-parent",
            "--new-session",
            "--unshare-all",  # no network, own pid/ipc/uts namespaces
            "--unshare-user",
            "--uid",
            str(KERNEL_UID),
            "--gid",
            str(KERNEL_UID),
            "--cap-drop",
            "ALL",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
        ]
        # The kernel's /tmp first: it is a fresh memory file system, so a course or a
        # virtual environment that lives under /tmp is bound on top of it, not hidden by it.
        args += ["--size", tmp_bytes, "--tmpfs", "/tmp", "--dir", "/tmp/home"]
        for path in _system_paths():
            args += ["--ro-bind", str(path), str(path)]
        args += self._python_args()
        if self.data_dir is not None:
            args += ["--ro-bind", str(self.data_dir), SANDBOX_DATA_DIR]
        # The student's folder is a memory file system with a size limit, like /tmp (which
        # holds the home).
        args += ["--size", tmp_bytes, "--tmpfs", str(self.workdir)]
        for entry in sorted(self.workdir.rglob("*")):
            if entry.is_file() and not entry.is_symlink():
                args += ["--ro-bind", str(entry), str(entry)]
        # What the grader shares: the sockets' and the channel's folders (writable mount
        # points the kernel cannot replace) and the connection file (read-only).
        for folder in (self.ipc_dir, self.channel_dir):
            args += ["--bind", str(folder), str(folder)]
        if self.connection_file.exists():
            args += ["--ro-bind", str(self.connection_file), str(self.connection_file)]
        args += ["--chdir", str(self.workdir), "--"]
        return args

    def wrap(self, kernel_cmd: list[str]) -> list[str]:
        """The full command: its CPU share, a clean environment, limits, (if available)
        bubblewrap, then the kernel."""
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
        cmd += kernel_cmd
        return self.cpu_share.wrap(cmd) if self.cpu_share is not None else cmd
