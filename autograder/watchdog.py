"""Watch a kernel's process tree and files: memory, processes, disk. Kill it at a limit.

The kernel runs in its own process tree (a bubblewrap sandbox with its own pid namespace,
or at least its own session). A :class:`Watchdog` thread polls that tree from the grader
and kills all of it when it uses more memory or processes than allowed, or writes more
than allowed into the folders it can write to; :attr:`Watchdog.problem` then names the
limit. :func:`kill_new_children` removes whatever the kernel left behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from pathlib import Path

from .limits import Limits
from .problems import Problem, ProblemName


def descendants(root_pid: int) -> list[int]:
    """``root_pid`` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def memory_kb(pid: int) -> int:
    """Proportional set size (shared pages split between sharers), else RSS, in KB."""
    for path, key in ((f"/proc/{pid}/smaps_rollup", "Pss:"), (f"/proc/{pid}/status", "VmRSS:")):
        try:
            with open(path, encoding="ascii", errors="replace") as fh:
                for line in fh:
                    if line.startswith(key):
                        return int(line.split()[1])
        except OSError:
            continue
    return 0


def folder_bytes(folder: Path, cap: int) -> int:
    """Bytes in regular files below ``folder`` (stops counting past ``cap``; no links)."""
    total = 0
    stack = [str(folder)]
    while stack and total <= cap:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_blocks * 512
            except OSError:
                continue
    return total


class Watchdog(threading.Thread):
    """Polls the kernel's process tree and writable folders; kills it at a limit."""

    def __init__(
        self,
        root_pid: int,
        limits: Limits,
        folders=(),
        sandbox_mounts=(),
        interval: float = 0.1,
    ):
        """``folders`` are host folders the kernel writes to; ``sandbox_mounts`` are the
        size-limited memory file systems inside a bubblewrap sandbox (seen through
        ``/proc/<pid>/root``)."""
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.limits = limits
        self.folders = [Path(f) for f in folders]
        self.sandbox_mounts = [str(m) for m in sandbox_mounts]
        self.interval = interval
        self.problem: Problem | None = None
        self.peak_mb = 0.0
        self._stop_event = threading.Event()

    def run(self) -> None:
        next_disk = 0.0
        while not self._stop_event.wait(self.interval):
            pids = descendants(self.root_pid)
            used_mb = sum(memory_kb(p) for p in pids) / 1024
            self.peak_mb = max(self.peak_mb, used_mb)
            # Processes first: forked children share memory, so their summed size overstates it.
            if len(pids) > self.limits.max_processes:
                self._kill(
                    Problem(
                        ProblemName.PROCESS_LIMIT,
                        f"{len(pids)} processes (limit {self.limits.max_processes})",
                    )
                )
            elif used_mb > self.limits.memory_mb:
                self._kill(
                    Problem(
                        ProblemName.MEMORY_LIMIT,
                        f"used {used_mb:.0f} MB (limit {self.limits.memory_mb} MB)",
                    )
                )
            elif time.monotonic() >= next_disk:
                next_disk = time.monotonic() + 0.5
                problem = self.disk_problem(pids)
                if problem is not None:
                    self._kill(problem)

    def disk_problem(self, pids: list[int] | None = None) -> Problem | None:
        """A DiskLimit problem when the kernel's files reach the limit, else None.

        The executor also asks after every cell, so that the limit is charged to the cell
        that wrote the files, not to whatever runs when the next poll comes."""
        cap = self.limits.disk_mb * 2**20
        pids = descendants(self.root_pid) if pids is None else pids
        written = sum(folder_bytes(f, cap) for f in self.folders)
        written = max(written, self._sandbox_usage(pids))
        # a size-limited file system refuses writes at its cap: full is the limit
        if written < cap - 2**20:
            return None
        return Problem(
            ProblemName.DISK_LIMIT,
            f"wrote over {self.limits.disk_mb} MB of files (limit {self.limits.disk_mb} MB)",
        )

    def cpu_seconds(self) -> float:
        """CPU time the kernel's processes have used so far (the operating system's count,
        which the kernel cannot change; finished children included)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in descendants(self.root_pid):
            try:
                with open(f"/proc/{pid}/stat", "rb") as fh:
                    fields = fh.read().decode(errors="replace").rsplit(")", 1)[1].split()
                total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
            except (OSError, IndexError, ValueError):
                continue
        return total / ticks

    def kill(self, problem: Problem) -> None:
        """Kill the kernel's whole tree now, naming ``problem`` as the reason."""
        self._kill(problem)

    def _sandbox_usage(self, pids: list[int]) -> int:
        """Bytes used in the largest of the sandbox's memory file systems."""
        for pid in pids[1:]:  # the sandbox's processes (not bubblewrap's outer one)
            used = 0
            try:
                for mount in self.sandbox_mounts:
                    info = os.statvfs(f"/proc/{pid}/root{mount}")
                    used = max(used, (info.f_blocks - info.f_bfree) * info.f_frsize)
            except OSError:
                continue
            return used
        return 0

    def _kill(self, problem: Problem) -> None:
        self.problem = problem
        kill_tree(self.root_pid)
        self._stop_event.set()

    def stop(self) -> None:
        self._stop_event.set()


def kill_tree(root_pid: int) -> None:
    """SIGKILL ``root_pid`` and everything below it, until nothing is left."""
    for _ in range(20):  # a fork bomb keeps forking: kill until nothing is left
        pids = descendants(root_pid)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if len(pids) <= 1 and not Path(f"/proc/{root_pid}").exists():
            break
        time.sleep(0.01)


def become_subreaper() -> bool:
    """Make orphaned descendants of this process its children (Linux prctl), so that a
    daemon the kernel forked cannot escape :func:`kill_new_children`."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def children() -> set[int]:
    """Direct children of this process."""
    me = os.getpid()
    return {pid for pid in descendants(me) if pid != me and _parent(pid) == me}


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().decode(errors="replace").rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def kill_new_children(before: set[int]) -> int:
    """Kill every child process (and its tree) that was not there in ``before``."""
    killed = 0
    for _ in range(5):
        new = children() - before
        if not new:
            break
        for pid in new:
            kill_tree(pid)
            killed += 1
        for pid in new:
            try:
                os.waitpid(pid, os.WNOHANG)
            except OSError:
                pass
    return killed
