"""Start the student's kernel in a sandbox.

With bubblewrap (``bwrap``) the kernel sees a read-only system, the course's helper
package and data, a private ``/tmp`` and its own working folder that holds only the
student's files: not ``solutions/``, not the gradebook, not other submissions, not the
notebook with hidden tests. It has no network (it talks to the grader over Unix sockets)
and its own process namespace, so killing the sandbox kills everything it started.

Without bubblewrap the kernel still runs in its own working folder with the resource
limits, but it can read anything the grader's user can read: the grader says so loudly.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .limits import Limits

# Environment variables passed into the kernel; everything else is dropped.
_ENV_KEEP = (
    "PATH",
    "LANG",
    "LC_ALL",
    "NBGRADER_EXECUTION",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "TF_CPP_MIN_LOG_LEVEL",
    "PYTHONHASHSEED",
)
_ENV_PREFIXES = ("CNN_COURSE_",)


def bwrap_path() -> str | None:
    """The bubblewrap binary, if it exists and works here (None otherwise)."""
    if os.environ.get("CNN_GRADER_NO_BWRAP"):
        return None
    path = shutil.which("bwrap")
    if path is None:
        return None
    import subprocess

    probe = subprocess.run(
        [path, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
        capture_output=True,
        timeout=20,
    )
    return path if probe.returncode == 0 else None


def _readonly_paths() -> list[Path]:
    """System and Python paths the kernel must read, plus the course helper package."""
    paths = [Path(p) for p in ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/etc")]
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        paths.append(Path(prefix))
    import cnncourse

    # The packages as Python imports them (an editable install points at its checkout),
    # and the bundled data next to them; never the rest of the project.
    package_dir = Path(cnncourse.__file__).resolve().parent
    paths += [package_dir, package_dir.parent / "data", Path(__file__).resolve().parent]
    return [p for p in paths if p.exists()]


@dataclass
class Sandbox:
    """How to wrap a kernel command. ``workdir`` is the only writable student folder."""

    workdir: Path
    runtime_dir: Path
    limits: Limits = field(default_factory=Limits)
    bwrap: str | None = None
    isolated: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.isolated = self.bwrap is not None

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in _ENV_KEEP or k.startswith(_ENV_PREFIXES)}
        home = self.runtime_dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        env.update(
            HOME=str(home),
            TMPDIR=str(self.runtime_dir / "tmp"),
            MPLCONFIGDIR=str(home / ".matplotlib"),
            MPLBACKEND="module://matplotlib_inline.backend_inline",
            PYTHONNOUSERSITE="1",
            PYTHONDONTWRITEBYTECODE="1",
            CNN_COURSE_OFFLINE="1",
        )
        (self.runtime_dir / "tmp").mkdir(parents=True, exist_ok=True)
        return env

    def wrap(self, kernel_cmd: list[str]) -> list[str]:
        """The full command: resource limits, then (if available) bubblewrap, then kernel."""
        limits = self.limits
        data_bytes = limits.memory_mb * 2**20
        cmd = [
            "prlimit",
            f"--data={data_bytes}:{data_bytes}",
            f"--fsize={limits.file_size_mb * 2**20}",
            f"--nproc={limits.max_processes * 4}",
            "--core=0",
            "--",
        ]
        if self.bwrap:
            cmd += [
                self.bwrap,
                "--die-with-parent",
                "--new-session",
                "--unshare-all",  # no network, own pid/ipc/uts namespaces
                "--proc",
                "/proc",
                "--dev",
                "/dev",
                "--tmpfs",
                "/tmp",
            ]
            for path in _readonly_paths():
                cmd += ["--ro-bind", str(path), str(path)]
            cmd += ["--bind", str(self.runtime_dir), str(self.runtime_dir)]
            cmd += ["--bind", str(self.workdir), str(self.workdir)]
            cmd += ["--chdir", str(self.workdir)]
            # The editable install maps `cnncourse` and `autograder` onto project paths
            # bound above; the rest of the project (solutions/, tests/) is not there.
            cmd += ["--"]
        return (
            cmd + ["env", "-i"] + [f"{k}={v}" for k, v in self.environment().items()] + kernel_cmd
        )
