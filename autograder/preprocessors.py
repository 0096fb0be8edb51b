"""nbgrader preprocessors that make autograding safe; they plug into nbgrader's Autograde.

* :class:`GuardedExecute` replaces nbgrader's ``Execute``: it starts the kernel in the
  sandbox, enforces the limits, restores trusted kernel state before every test cell,
  survives a kernel that dies (``os._exit``, a memory or process limit) by restarting it
  and replaying the cells before, and caps output.
* :class:`SaveAutoGradesErrorsOnly` replaces ``SaveAutoGrades``: only an *error* zeroes a
  test cell, not a warning printed on stderr by correct code.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async, run_sync
from nbclient.client import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests, Execute, OverwriteCells, SaveAutoGrades
from traitlets import Any, Dict, Unicode

from .limits import LIMIT_NAMES, Limits
from .sandbox import Sandbox

# The guard runs as a *user expression* of an empty execute request: IPython evaluates
# user expressions with eval(), outside the input and AST transformers that student code
# can install, so a transformer cannot rewrite the guard into `pass`.
GUARD_INSTALL = "__import__('autograder.kernel_guard').kernel_guard.install() or 'guard-ok'"
GUARD_RESTORE = "(__import__('autograder.kernel_guard').kernel_guard.restore(), 'guard-ok')[1]"


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel command is wrapped by a :class:`Sandbox`."""

    sandbox = Any(None, allow_none=True)

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        return self.sandbox.wrap(cmd) if self.sandbox is not None else cmd


def _error_output(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(
        output_type="error",
        ename=ename,
        evalue=evalue,
        traceback=[f"{ename}: {evalue}"],
    )


def _descendants(root_pid: int) -> list[int]:
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


def _rss_kb(pid: int) -> int:
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


class Watchdog(threading.Thread):
    """Polls the kernel's process tree; kills it when memory or process limits are hit."""

    def __init__(self, root_pid: int, limits: Limits, interval: float = 0.1):
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.limits = limits
        self.interval = interval
        self.reason: str | None = None
        self.peak_rss_mb = 0.0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            pids = _descendants(self.root_pid)
            rss_mb = sum(_rss_kb(p) for p in pids) / 1024
            self.peak_rss_mb = max(self.peak_rss_mb, rss_mb)
            # Processes first: forked children share memory, so their summed RSS overstates it.
            if len(pids) > self.limits.max_processes:
                self._kill(
                    pids,
                    f"{LIMIT_NAMES['max_processes']}: {len(pids)} processes "
                    f"(limit {self.limits.max_processes})",
                )
            elif rss_mb > self.limits.memory_mb:
                self._kill(
                    pids,
                    f"{LIMIT_NAMES['memory_mb']}: used {rss_mb:.0f} MB "
                    f"(limit {self.limits.memory_mb} MB)",
                )

    def _kill(self, pids: list[int], reason: str) -> None:
        self.reason = reason
        for _ in range(20):  # a fork bomb keeps forking: kill until nothing is left
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            pids = _descendants(self.root_pid)
            if len(pids) <= 1 and not Path(f"/proc/{self.root_pid}").exists():
                break
        self._stop_event.set()

    def stop(self) -> None:
        self._stop_event.set()


class GuardedExecute(Execute):
    """nbgrader's Execute, run in a sandbox with limits and a trusted-state guard."""

    workdir = Unicode("", help="The student's working folder (kernel cwd).").tag(config=True)
    runtime_dir = Unicode("", help="Folder for the connection file and sockets.").tag(config=True)
    limits = Dict({}, help="Limits (see autograder.limits.Limits) as a dict.").tag(config=True)
    bwrap = Unicode("", help="bubblewrap binary, or '' for no filesystem sandbox.").tag(config=True)
    report_file = Unicode("", help="Where to write the limit events as JSON.").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(*args, **kwargs)

    # -- kernel start -------------------------------------------------------------------
    @property
    def _limits(self) -> Limits:
        return Limits(**self.limits)

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        runtime = Path(self.runtime_dir)
        runtime.mkdir(parents=True, exist_ok=True)
        km.sandbox = Sandbox(
            workdir=Path(self.workdir),
            runtime_dir=runtime,
            limits=self._limits,
            bwrap=self.bwrap or None,
        )
        # Unix sockets: the kernel has no network namespace, so TCP would not reach it.
        km.transport = "ipc"
        km.ip = str(runtime / "kernel-ipc")
        km.connection_file = str(runtime / "kernel.json")
        return km

    async def async_start_new_kernel(self, **kwargs):
        # The kernel starts in the student's folder, never next to the graded notebook.
        kwargs["cwd"] = self.workdir
        # The kernel's own console chatter is not the student's output (that comes over
        # the kernel protocol): keep it off the grader's terminal.
        kwargs["stdout"] = subprocess.DEVNULL
        kwargs["stderr"] = subprocess.DEVNULL
        await super().async_start_new_kernel(**kwargs)

    # nbclient binds its sync wrapper to the base coroutine: rebind it to the override.
    start_new_kernel = run_sync(async_start_new_kernel)

    # -- helpers ------------------------------------------------------------------------
    async def _async_silent(
        self, code: str, timeout: float, expressions: dict | None = None
    ) -> dict | None:
        """Run ``code`` without output or history; wait for its reply (None on timeout)."""
        msg_id = self.kc.execute(
            code,
            silent=True,
            store_history=False,
            allow_stdin=False,
            user_expressions=expressions or {},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=1))
            except queue.Empty:
                await self._async_check_alive()  # raises DeadKernelError if it died
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg
        return None

    def _silent(self, code: str, timeout: float = 60) -> dict | None:
        return run_sync(self._async_silent)(code, timeout)

    def _guard(self, expression: str) -> bool:
        """Evaluate a guard expression; True when the kernel answered 'guard-ok'."""
        reply = run_sync(self._async_silent)("", 60, {"guard": expression})
        if reply is None:
            return False
        result = reply["content"].get("user_expressions", {}).get("guard", {})
        text = result.get("data", {}).get("text/plain", "")
        return result.get("status") == "ok" and text == "'guard-ok'"

    def _start_watchdog(self) -> Watchdog:
        process = getattr(self.km.provisioner, "process", None)
        watchdog = Watchdog(process.pid, self._limits)
        watchdog.start()
        return watchdog

    def _record(self, cell_index: int | None, limit: str, message: str) -> None:
        self.events.append({"cell": cell_index, "limit": limit, "message": message})

    # -- output cap ---------------------------------------------------------------------
    def output(self, outs, msg, display_id, cell_index):
        size = len(json.dumps(msg.get("content", {}), default=str))
        used = self._output_bytes.get(cell_index, 0) + size
        self._output_bytes[cell_index] = used
        cap = self._limits.output_kb * 1024
        if used > cap:
            if cell_index not in self._truncated:
                self._truncated.add(cell_index)
                self._record(
                    cell_index, "OutputLimit", f"OutputLimit: output over {cap // 1024} KB dropped"
                )
                outs.append(
                    NotebookNode(
                        output_type="stream",
                        name="stdout",
                        text=f"\n[grader: output over {cap // 1024} KB was dropped "
                        "(OutputLimit)]\n",
                    )
                )
            return None
        return super().output(outs, msg, display_id, cell_index)

    # -- the run ------------------------------------------------------------------------
    def preprocess(self, nb, resources=None, km=None):
        NotebookClient.__init__(self, nb, km)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        self.events: list[dict] = []
        self._output_bytes: dict[int, int] = {}
        self._truncated: set[int] = set()
        limits = self._limits
        self.timeout = limits.cell_timeout_s
        deadline = time.monotonic() + limits.notebook_timeout_s
        pending = [i for i, c in enumerate(self.nb.cells) if c.cell_type == "code"]
        done: list[int] = []  # cells that ran to the end, replayed after a restart
        self.peak_rss_mb = 0.0
        while pending:
            self.km = None
            with self.setup_kernel():
                watchdog = self._start_watchdog()
                try:
                    info = self.wait_for_reply(self.kc.kernel_info())
                    self.nb.metadata["language_info"] = info["content"]["language_info"]
                    if not self._guard(GUARD_INSTALL):
                        self._record(None, "GuardFailed", "GuardFailed: could not install")
                    for index in done:
                        self._silent(self.nb.cells[index].source, timeout=self.timeout)
                    while pending:
                        index = pending[0]
                        cell = self.nb.cells[index]
                        if time.monotonic() > deadline:
                            pending.pop(0)
                            cell.outputs = [
                                _error_output(
                                    "NotebookTimeLimit",
                                    f"not run: the notebook used its {limits.notebook_timeout_s} s",
                                )
                            ]
                            self._record(
                                index, "NotebookTimeLimit", "NotebookTimeLimit: cell not run"
                            )
                            continue
                        if utils.is_grade(cell) and not self._guard(GUARD_RESTORE):
                            # The kernel does not answer the guard truthfully: its test
                            # results cannot be trusted, so the test is not run.
                            pending.pop(0)
                            message = "the grader could not restore a trusted state"
                            cell.outputs = [_error_output("GuardFailed", message)]
                            self._record(index, "GuardFailed", f"GuardFailed: {message}")
                            continue
                        try:
                            self.execute_cell(cell, index, store_history=True)
                        except DeadKernelError:
                            pending.pop(0)
                            reason = watchdog.reason or (
                                "KernelDied: the kernel exited while running this cell "
                                "(os._exit, sys.exit in a thread, or a crash)"
                            )
                            name = reason.split(":", 1)[0]
                            cell.outputs.append(_error_output(name, reason.split(": ", 1)[-1]))
                            self._record(index, name, reason)
                            break  # leave the with-block: a fresh kernel replays `done`
                        except Exception as exc:  # e.g. no output after an interrupted loop
                            pending.pop(0)
                            message = (
                                f"over {self.timeout} s or unresponsive ({type(exc).__name__})"
                            )
                            cell.outputs.append(_error_output("CellTimeLimit", message))
                            self._record(index, "CellTimeLimit", f"CellTimeLimit: {message}")
                            break  # restart: the kernel may still be busy
                        pending.pop(0)
                        if any(o.get("ename") == "MemoryError" for o in cell.get("outputs", [])):
                            self._record(
                                index,
                                "MemoryLimit",
                                f"MemoryLimit: MemoryError at the {limits.memory_mb} MB limit",
                            )
                            break  # the memory may still be held: restart without this cell
                        if self._timed_out(cell):
                            self._record(
                                index, "CellTimeLimit", f"CellTimeLimit: over {self.timeout} s"
                            )
                            continue  # a cell that never finished is not replayed
                        done.append(index)
                finally:
                    watchdog.stop()
                    self.peak_rss_mb = max(self.peak_rss_mb, watchdog.peak_rss_mb)
        self.set_widgets_metadata()
        if self.report_file:
            Path(self.report_file).write_text(
                json.dumps({"events": self.events, "peak_rss_mb": self.peak_rss_mb}),
                encoding="utf-8",
            )
        return self.nb, self.resources

    @staticmethod
    def _timed_out(cell) -> bool:
        return any(
            o.get("output_type") == "error" and o.get("ename") == "CellTimeoutError"
            for o in cell.get("outputs", [])
        )


def determine_grade_errors_only(cell, log=None):
    """nbgrader's ``determine_grade`` without zeroing cells that wrote to stderr."""
    if cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell):
        kept = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
        shadow = NotebookNode(dict(cell))
        shadow.outputs = kept
        return utils.determine_grade(shadow, log)
    return utils.determine_grade(cell, log)


class SaveAutoGradesErrorsOnly(SaveAutoGrades):
    """SaveAutoGrades whose scoring ignores stderr (warnings) and counts only errors."""

    def _add_score(self, cell, resources):
        grade = self.gradebook.find_grade(
            cell.metadata["nbgrader"]["grade_id"],
            self.notebook_id,
            self.assignment_id,
            self.student_id,
        )
        grade.auto_score, _ = determine_grade_errors_only(cell, self.log)
        # As in nbgrader: a manual score or no automatic score means a person must look.
        grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
        self.gradebook.db.commit()


class RedactHiddenTests(ClearHiddenTests):
    """For feedback: drop hidden-test source and the tracebacks of cells that had it.

    The student still sees which test cell failed and the error message (for example
    ``conv_backward: dA_prev differs ... at index (0, 1, 2, 0)``), not the hidden code.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code" and utils.is_grade(cell):
            if self._remove_hidden_test_region(cell):
                cell.source = cell.source.rstrip() + "\n# (hidden tests are not shown)"
                for output in cell.get("outputs", []):
                    if output.get("output_type") == "error":
                        output["traceback"] = [f"{output.get('ename')}: {output.get('evalue')}"]
        return cell, resources


class OverwriteCellsAndFlags(OverwriteCells):
    """nbgrader's OverwriteCells, plus: the grade/solution/task flags come back from the
    gradebook too. (nbgrader restores source, points, lock and checksum, but a student who
    flips ``grade`` to false on a test cell makes plain nbgrader fail the whole notebook.)"""

    def preprocess(self, nb, resources):
        # DeduplicateIds leaves copies of a cell with nbgrader metadata but no grade_id,
        # which nbgrader's missing-cell check cannot handle: they are plain cells now.
        for cell in nb.cells:
            meta = cell.get("metadata", {})
            if "nbgrader" in meta and "grade_id" not in meta["nbgrader"]:
                del meta["nbgrader"]
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id is not None:
            meta = cell.metadata.nbgrader
            source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
            graded = {c.name: c for c in source_nb.grade_cells}
            solutions = {c.name for c in source_nb.solution_cells}
            meta["grade"] = grade_id in graded
            meta["solution"] = grade_id in solutions
            meta["task"] = False
            if grade_id in graded:
                meta["points"] = float(graded[grade_id].max_score)
            else:
                meta.pop("points", None)
            meta.setdefault("schema_version", 3)
        return super().preprocess_cell(cell, resources, cell_index)
