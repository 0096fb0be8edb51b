"""A CPU share the grader sets for each kernel: a control group with a CPU quota.

A kernel that starts 30 busy processes must not slow its neighbours down: each kernel runs
in a control group of its own whose quota is its share of the machine (``CPUs / jobs``), so
the scheduler gives the whole tree at most that much CPU time, however many processes it
starts. The kernel joins the group before it runs any code (a one-line shell wrapper writes
its own process id into the group, then execs the kernel command), and in its sandbox it
sees neither the group nor ``/sys``: it cannot leave it.

cgroup v2 (a ``cpu.max`` file) and v1 (``cpu.cfs_quota_us``) are both used where this process
may create a child group; where it may not (no permission, no cpu controller), :func:`create`
returns ``None`` and the grader says that kernels share the CPUs as the host's scheduler
decides.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

PERIOD_US = 100_000
_counter = itertools.count()


def _own_group(controller: str) -> str | None:
    """This process's group in the hierarchy of ``controller`` ('' for cgroup v2)."""
    try:
        lines = Path("/proc/self/cgroup").read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    for line in lines:
        number, controllers, path = line.split(":", 2)
        if controller == "" and number == "0" and controllers == "":
            return path
        if controller and controller in controllers.split(","):
            return path
    return None


def _candidates() -> list[tuple[Path, str]]:
    """(parent folder, version) pairs where a child group could be made, best first."""
    found = []
    v1 = _own_group("cpu")
    if v1 is not None:
        for mount in ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"):
            base = Path(mount) / v1.lstrip("/")
            if (base / "cpu.cfs_quota_us").exists():
                found.append((base, "v1"))
                break
    v2 = _own_group("")
    if v2 is not None:
        base = Path("/sys/fs/cgroup") / v2.lstrip("/")
        controllers = base / "cgroup.subtree_control"
        try:
            if "cpu" in controllers.read_text(encoding="ascii").split():
                found.append((base, "v2"))
        except OSError:
            pass
    return found


@dataclass
class CpuShare:
    """One kernel's control group. :meth:`wrap` puts a command in it; :meth:`remove` deletes
    it once the kernel is gone."""

    path: Path
    cpus: float

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def wrap(self, command: list[str]) -> list[str]:
        """``command``, started inside the group (it joins before anything else runs)."""
        join = 'echo $$ > "$1" && shift && exec "$@"'
        return ["/bin/sh", "-c", join, "cnn-cpu-share", str(self.procs), *command]

    def remove(self) -> None:
        try:
            os.rmdir(self.path)
        except OSError:
            pass  # still busy for a moment after the kill: the next run's sweep removes it


def create(cpus: float) -> CpuShare | None:
    """A new group limited to ``cpus`` CPUs' worth of time, or None where none can be made."""
    if os.environ.get("CNN_GRADER_NO_CPU_SHARE"):
        return None  # switched off (for comparisons: benchmarks/bench_grader_bounds.py)
    quota = max(1000, int(cpus * PERIOD_US))
    name = f"cnn-kernel-{os.getpid()}-{next(_counter)}"
    for parent, version in _candidates():
        path = parent / name
        try:
            path.mkdir()
        except OSError:
            continue
        try:
            if version == "v1":
                (path / "cpu.cfs_period_us").write_text(str(PERIOD_US), encoding="ascii")
                (path / "cpu.cfs_quota_us").write_text(str(quota), encoding="ascii")
            else:
                (path / "cpu.max").write_text(f"{quota} {PERIOD_US}", encoding="ascii")
        except OSError:
            CpuShare(path, cpus).remove()
            continue
        return CpuShare(path, cpus)
    return None


def sweep() -> int:
    """Remove empty groups left by grader processes that are gone; how many were removed."""
    removed = 0
    for parent, _ in _candidates():
        for path in parent.glob("cnn-kernel-*"):
            try:
                pid = int(path.name.split("-")[2])
            except (IndexError, ValueError):
                continue
            if Path(f"/proc/{pid}").exists():
                continue  # its grader is alive: it removes its own groups
            try:
                os.rmdir(path)
                removed += 1
            except OSError:
                pass
    return removed


def available() -> bool:
    """Whether kernels can get a CPU share here (a group can be made and removed)."""
    share = create(1.0)
    if share is None:
        return False
    share.remove()
    return True
