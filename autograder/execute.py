"""Execute a submission: its cells in a sandboxed kernel, its test cells by the grader.

:class:`SandboxedExecute` replaces nbgrader's ``Execute`` preprocessor. It starts the
kernel in the sandbox (:mod:`autograder.sandbox`), runs the student's cells in order under
the limits (:mod:`autograder.limits`), and at every test cell does *not* run the cell's
code: it asks :func:`autograder.decide.decide_cell` for the grader's verdict, which runs
the student's functions on the grader's inputs and compares in the grader's process. The
verdicts go to ``resources["autograder_verdicts"]`` for :class:`~autograder.nbgrader_steps.
SaveVerdicts`; the problems (limits hit, ...) go to ``report_file``.

A kernel that dies or hits a limit is restarted and the cells that finished before are
replayed, all within the notebook's deadline; the cell that caused it is reported by name.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import time
from pathlib import Path

import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async, run_sync
from nbclient.client import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode, from_dict
from nbgrader import utils
from nbgrader.preprocessors import Execute
from traitlets import Any, Bool, Dict, Unicode

from cnncourse.runtime import cpu_quota

from . import cpu_share
from .collect import ChannelFolder, KernelCalls, ProbeTimeout
from .decide import CellVerdict, decide_cell
from .intake import clean_strings
from .limits import Limits
from .problems import Problem, ProblemName
from .sandbox import KernelView, Sandbox
from .watchdog import Watchdog

# iopub messages that carry no output (never counted against the output limits)
_NOT_OUTPUT = {"status", "execute_input"}


class OutputFlood(Exception):
    """The kernel printed more than the limits allow while the grader waited for a reply."""


_SOCKET_TYPES = {"shell": zmq.DEALER, "stdin": zmq.DEALER, "control": zmq.DEALER, "hb": zmq.REQ}


class BoundedKernelClient(AsyncKernelClient):
    """A kernel client whose sockets refuse any message larger than ``max_message_bytes``
    (ZeroMQ drops such a message, and the connection, before the grader holds it in memory);
    :meth:`dropped_output` says when that happened to the kernel's output channel."""

    max_message_bytes = 8 * 2**20
    _iopub_monitor: zmq.Socket | None = None

    def _create_connected_socket(self, channel: str, identity: bytes | None = None):
        url = self._make_url(channel)
        sock = self.context.socket(zmq.SUB if channel == "iopub" else _SOCKET_TYPES[channel])
        sock.linger = 1000
        sock.setsockopt(zmq.MAXMSGSIZE, int(self.max_message_bytes))
        if identity:
            sock.identity = identity
        if channel == "iopub":
            monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
            self._iopub_monitor = zmq.Socket.shadow(monitor.underlying)
        sock.connect(url)
        return sock

    def dropped_output(self) -> bool:
        """Whether the output channel was cut since the last call (an oversized message)."""
        monitor = getattr(self, "_iopub_monitor", None)
        dropped = False
        while monitor is not None and monitor.poll(0):
            monitor.recv_multipart()
            dropped = True
        return dropped


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel command is wrapped by a :class:`Sandbox`."""

    sandbox = Any(None, allow_none=True)

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        return self.sandbox.wrap(cmd) if self.sandbox is not None else cmd


def _error_output(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(
        output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]
    )


class _Restart(Exception):
    """Leave the kernel's with-block: start a fresh kernel and replay."""


class SandboxedExecute(Execute):
    """nbgrader's Execute, run in a sandbox with limits; test cells decided by the grader."""

    workdir = Unicode("", help="The student's working folder (kernel cwd).").tag(config=True)
    runtime_dir = Unicode("", help="Connection file, sockets, result channel.").tag(config=True)
    limits = Dict({}, help="Limits (see autograder.limits.Limits) as a dict.").tag(config=True)
    bwrap = Unicode("", help="bubblewrap binary, or '' for no filesystem sandbox.").tag(config=True)
    report_file = Unicode("", help="Where to write the problems as JSON.").tag(config=True)
    secret = Unicode("", help="Seeds the grader's cases (never sent to the kernel).").tag(
        config=True
    )
    data_dir = Unicode("", help="The digits the kernel may train on (read-only).").tag(config=True)

    # A cell over its time limit raises CellTimeoutError and the kernel is restarted
    # without it. nbgrader's default (interrupt, write an error output, go on) would send
    # SIGINT to bubblewrap rather than to the kernel, leave a possibly still busy kernel
    # behind, and count the cell as finished, so that it would be replayed after the next
    # restart and run out of time again.
    interrupt_on_timeout = Bool(False)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(*args, **kwargs)

    # -- kernel start -------------------------------------------------------------------
    @property
    def _limits(self) -> Limits:
        return Limits(**self.limits)

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        limits = self._limits
        BoundedKernelClient.max_message_bytes = max(4 * limits.output_kb * 1024, 8 * 2**20)
        box = Sandbox(
            workdir=Path(self.workdir),
            runtime_dir=Path(self.runtime_dir),
            limits=limits,
            bwrap=self.bwrap or None,
            view=KernelView.for_notebook(self._notebook),
            data_dir=Path(self.data_dir) if self.data_dir else None,
        )
        box.prepare()
        # Each kernel gets the CPU share of one grading job (the threads it is told to use).
        threads = int(os.environ.get("CNN_COURSE_THREADS", "0") or 0) or cpu_quota()
        box.cpu_share = cpu_share.create(float(threads))
        self._shares.append(box.cpu_share)
        if self._channel is None:
            self._channel = ChannelFolder(box.channel_dir)
        km.sandbox = box
        km.client_factory = BoundedKernelClient
        # Unix sockets: the kernel has no network namespace, so TCP would not reach it.
        km.transport = "ipc"
        km.ip = str(box.ipc_dir / "kernel")
        km.connection_file = str(box.connection_file)
        return km

    async def async_start_new_kernel(self, **kwargs):
        # The kernel starts in the student's folder, never next to the graded notebook.
        kwargs["cwd"] = self.workdir
        # The kernel's console chatter is not the student's output (that comes over the
        # kernel protocol): keep it off the grader's terminal.
        kwargs["stdout"] = subprocess.DEVNULL
        kwargs["stderr"] = subprocess.DEVNULL
        await super().async_start_new_kernel(**kwargs)

    # nbclient binds its sync wrapper to the base coroutine: rebind it to the override.
    start_new_kernel = run_sync(async_start_new_kernel)

    # -- silent requests (replays and the grader's calls) --------------------------------
    async def _drain_output(self) -> None:
        """Read and drop what the kernel printed meanwhile (it must not pile up in the
        grader). While a test cell's checks run (``self._request_output`` is not None) it
        counts against that cell's output limit, like any cell's output; a replay's output
        was counted when the cell first ran."""
        cap = self._limits.output_kb * 1024
        if self._request_output is not None and self.kc.dropped_output():
            await self._async_check_alive()  # a dead kernel is KernelDied, not this
            raise OutputFlood(
                f"an output message over {BoundedKernelClient.max_message_bytes // 2**20} MB "
                "was printed while the grader's checks ran"
            )
        while True:
            try:
                msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=0))
            except queue.Empty:
                return
            if msg.get("msg_type") in _NOT_OUTPUT or self._request_output is None:
                continue
            self._request_output += len(json.dumps(msg.get("content", {}), default=str))
            if self._request_output > cap:
                raise OutputFlood(
                    f"output over {self._limits.output_kb} KB for this cell, printed while "
                    "the grader's checks ran"
                )

    async def _async_silent(self, code: str, timeout: float) -> dict | None:
        """Run ``code`` without output or history; its reply, or None after ``timeout``."""
        msg_id = self.kc.execute(code, silent=True, store_history=False, allow_stdin=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await self._drain_output()
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=0.2))
            except queue.Empty:
                await self._async_check_alive()  # raises DeadKernelError if it died
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                await self._drain_output()
                return msg
        return None

    def silent(self, code: str, timeout: float) -> dict | None:
        return run_sync(self._async_silent)(code, max(timeout, 0.1))

    # -- output limits (display updates and widget messages included) --------------------
    def process_message(self, msg, cell, cell_index):
        msg_type = msg.get("msg_type") or msg.get("header", {}).get("msg_type", "")
        if msg_type in _NOT_OUTPUT:
            return super().process_message(msg, cell, cell_index)
        size = len(json.dumps(msg.get("content", {}), default=str))
        used = self._output_bytes.get(cell_index, 0) + size
        self._output_bytes[cell_index] = used
        self._notebook_output += size
        limits = self._limits
        over_cell = used > limits.output_kb * 1024
        over_notebook = self._notebook_output > limits.notebook_output_kb * 1024
        if not (over_cell or over_notebook):
            return super().process_message(msg, cell, cell_index)
        if cell_index not in self._truncated:
            self._truncated.add(cell_index)
            where = (
                f"{limits.output_kb} KB for this cell"
                if over_cell
                else f"{limits.notebook_output_kb} KB for the notebook"
            )
            self._problem(cell_index, ProblemName.OUTPUT_LIMIT, f"output over {where} was dropped")
            cell.outputs.append(
                NotebookNode(
                    output_type="stream",
                    name="stdout",
                    text="\n[grader: further output was dropped (OutputLimit)]\n",
                )
            )
        return None

    # -- bookkeeping --------------------------------------------------------------------
    def _problem(self, cell_index: int | None, name: ProblemName, message: str) -> None:
        cell = ""
        if cell_index is not None:
            cell = (
                self.nb.cells[cell_index]
                .get("metadata", {})
                .get("nbgrader", {})
                .get("grade_id", f"cell {cell_index + 1}")
            )
        self.problems.append(Problem(name, message, cell, self._notebook))

    def _remaining(self) -> float:
        return self._deadline - time.monotonic()

    # -- the run ------------------------------------------------------------------------
    def preprocess(self, nb, resources=None, km=None):
        NotebookClient.__init__(self, nb, km)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        limits = self._limits
        self.problems: list[Problem] = []
        self.verdicts: dict[str, CellVerdict] = {}
        self._output_bytes: dict[int, int] = {}
        self._notebook_output = 0
        self._truncated: set[int] = set()
        self._notebook = str(resources.get("unique_key", ""))
        self._student = str(resources.get("nbgrader", {}).get("student", ""))
        self._deadline = time.monotonic() + limits.notebook_timeout_s
        self.peak_mb = 0.0
        self._channel: ChannelFolder | None = None
        self._shares: list = []
        self._request_output: int | None = None  # bytes printed during a test cell's checks
        pending = [i for i, c in enumerate(self.nb.cells) if c.cell_type == "code"]
        done: list[int] = []  # cells that ran to the end: replayed after a restart
        restarts = 0
        while pending:
            if restarts > limits.max_restarts:
                self._skip(
                    pending,
                    ProblemName.KERNEL_DIED,
                    f"not run: {limits.max_restarts} restarts used",
                )
                break
            if self._remaining() <= 0:
                self._skip(
                    pending, ProblemName.NOTEBOOK_TIME_LIMIT, "not run: the notebook used its time"
                )
                break
            restarts += 1
            self.km = None
            with self.setup_kernel():
                watchdog = self._start_watchdog()
                try:
                    info = self.wait_for_reply(self.kc.kernel_info())
                    self.nb.metadata["language_info"] = info["content"]["language_info"]
                    self._replay(done, watchdog)
                    self._run_pending(pending, done, watchdog)
                except _Restart:
                    pass
                finally:
                    watchdog.stop()
                    self.peak_mb = max(self.peak_mb, watchdog.peak_mb)
        if self._channel is not None:
            self._channel.close()
        for share in self._shares:
            if share is not None:
                share.remove()
        self.set_widgets_metadata()
        for cell in self.nb.cells:  # what the kernel printed may hold text no file can
            if cell.cell_type == "code" and cell.get("outputs"):
                cell.outputs = [from_dict(clean_strings(dict(o))) for o in cell.outputs]
        resources["autograder_verdicts"] = self.verdicts
        if self.report_file:
            report = Path(self.report_file)
            report.with_name(f"{report.stem}-{self._notebook}.json").write_text(
                json.dumps(
                    {
                        "notebook": self._notebook,
                        "problems": [p.to_json() for p in self.problems],
                        "peak_mb": self.peak_mb,
                        "verdicts": {
                            k: {
                                "passed": v.passed,
                                "problem": v.problem,
                                "message": v.message,
                                "cause": v.cause,
                            }
                            for k, v in self.verdicts.items()
                        },
                    }
                ),
                encoding="utf-8",
            )
        return self.nb, self.resources

    def _start_watchdog(self) -> Watchdog:
        process = getattr(self.km.provisioner, "process", None)
        assert process is not None, "the kernel has no process"
        folders, mounts = self.km.sandbox.writable_places()
        watchdog = Watchdog(process.pid, self._limits, folders=folders, sandbox_mounts=mounts)
        watchdog.start()
        return watchdog

    def _skip(self, pending: list[int], name: ProblemName, message: str) -> None:
        for index in pending:
            self.nb.cells[index].outputs = [_error_output(name, message)]
        if pending:
            self._problem(pending[0], name, f"{message} ({len(pending)} cell(s))")
        pending.clear()

    def _replay(self, done: list[int], watchdog: Watchdog) -> None:
        """Re-run the cells that finished before a restart, within the notebook's time."""
        for index in list(done):
            budget = min(self._limits.cell_timeout_s, self._remaining())
            if budget <= 0:
                raise _Restart  # the loop above reports NotebookTimeLimit
            try:
                reply = self.silent(self.nb.cells[index].source, budget)
            except DeadKernelError:
                # The kernel dies when this cell runs again: keep it out of later replays.
                done.remove(index)
                self._problem(index, ProblemName.KERNEL_DIED, "the kernel died replaying this cell")
                raise _Restart from None
            if reply is None:
                done.remove(index)
                self._problem(
                    index, ProblemName.CELL_TIME_LIMIT, "replaying this cell ran out of time"
                )
                raise _Restart

    def _run_pending(self, pending: list[int], done: list[int], watchdog: Watchdog) -> None:
        limits = self._limits
        while pending:
            index = pending[0]
            cell = self.nb.cells[index]
            if self._remaining() <= 0:
                self._skip(
                    pending, ProblemName.NOTEBOOK_TIME_LIMIT, "not run: the notebook used its time"
                )
                return
            self.timeout = max(1, int(min(limits.cell_timeout_s, self._remaining())))
            try:
                if utils.is_grade(cell):
                    self._decide(cell, index, watchdog)
                else:
                    self.execute_cell(cell, index, store_history=True)
                    self._charge_dropped_output(cell, index)
            except DeadKernelError:
                pending.pop(0)
                problem = watchdog.problem or Problem(
                    ProblemName.KERNEL_DIED,
                    "the kernel exited while running this cell (os._exit, a crash, a limit)",
                )
                cell.outputs.append(_error_output(problem.name, problem.message))
                self._problem(index, problem.name, problem.message)
                self._fail_verdict(cell, problem)
                raise _Restart from None
            except OutputFlood as exc:
                pending.pop(0)
                watchdog.kill(Problem(ProblemName.OUTPUT_LIMIT, str(exc)))
                cell.outputs = [_error_output(ProblemName.OUTPUT_LIMIT, str(exc))]
                self._problem(index, ProblemName.OUTPUT_LIMIT, str(exc))
                self._fail_verdict(cell, Problem(ProblemName.OUTPUT_LIMIT, str(exc)))
                raise _Restart from None
            except ProbeTimeout as exc:
                pending.pop(0)
                message = f"the checks of this cell did not finish in time ({exc})"
                cell.outputs = [_error_output(ProblemName.CELL_TIME_LIMIT, message)]
                self._problem(index, ProblemName.CELL_TIME_LIMIT, message)
                self._fail_verdict(cell, Problem(ProblemName.CELL_TIME_LIMIT, message))
                raise _Restart from None
            except Exception as exc:  # over the cell's time, or no reply from the kernel
                pending.pop(0)
                if isinstance(exc, CellTimeoutError):
                    message = f"the cell ran for more than {self.timeout} s (the limit per cell)"
                else:
                    message = f"no reply from the kernel ({type(exc).__name__})"
                cell.outputs.append(_error_output(ProblemName.CELL_TIME_LIMIT, message))
                self._problem(index, ProblemName.CELL_TIME_LIMIT, message)
                raise _Restart from None
            pending.pop(0)
            if utils.is_grade(cell):
                continue  # the grader's calls are never replayed
            disk = watchdog.disk_problem()
            if disk is not None:  # charged to the cell that wrote the files
                watchdog.kill(disk)
                cell.outputs.append(_error_output(disk.name, disk.message))
                self._problem(index, disk.name, disk.message)
                raise _Restart
            if any(o.get("ename") == "MemoryError" for o in cell.get("outputs", [])):
                self._problem(
                    index,
                    ProblemName.MEMORY_LIMIT,
                    f"MemoryError at the {limits.memory_mb} MB limit",
                )
                raise _Restart  # the memory may still be held: restart without this cell
            done.append(index)

    def _fail_verdict(self, cell, problem: Problem) -> None:
        if utils.is_grade(cell):
            grade_id = cell.metadata["nbgrader"]["grade_id"]
            self.verdicts[grade_id] = CellVerdict(grade_id, False, problem.name, problem.message)

    def _charge_dropped_output(self, cell, index: int) -> None:
        """An output message too large to receive, cut while this cell ran (or before it):
        the cell's problem, and never a later test cell's (the flag is read here)."""
        if self.kc is not None and self.kc.dropped_output() and index not in self._truncated:
            self._truncated.add(index)
            limit = BoundedKernelClient.max_message_bytes // 2**20
            self._problem(
                index, ProblemName.OUTPUT_LIMIT, f"an output message over {limit} MB was dropped"
            )
            cell.outputs.append(
                NotebookNode(
                    output_type="stream",
                    name="stdout",
                    text="\n[grader: further output was dropped (OutputLimit)]\n",
                )
            )

    def _decide(self, cell, index: int, watchdog: Watchdog) -> None:
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        # an output channel cut before this cell's checks began is not theirs
        if self.kc is not None:
            self.kc.dropped_output()
        deadline = time.monotonic() + min(self._limits.cell_timeout_s, self._remaining())
        assert self._channel is not None  # opened with the first kernel
        runner = KernelCalls(
            self.silent,
            self._channel,
            deadline,
            self._limits.result_mb * 2**20,
            cpu_seconds=watchdog.cpu_seconds,
        )
        self._request_output = 0
        try:
            verdict = decide_cell(
                self._notebook, grade_id, self.nb.cells, runner, self.secret, self._student
            )
        except (DeadKernelError, ProbeTimeout, OutputFlood):
            raise
        except MemoryError:  # what the kernel sent could not be held: its problem alone
            verdict = CellVerdict(
                grade_id,
                False,
                ProblemName.RESULT_TOO_LARGE,
                "the results of this cell's checks were too large to compare",
            )
        except Exception as exc:  # a bug of the grader's: say so, never blame the student
            verdict = CellVerdict(
                grade_id,
                False,
                ProblemName.GRADER_ERROR,
                f"the grader failed: {type(exc).__name__}: {exc}",
            )
        finally:
            self._request_output = None
        self.verdicts[grade_id] = verdict
        cell.outputs = verdict.outputs()
        cell.execution_count = None
        if not verdict.passed and verdict.problem not in (
            ProblemName.CHECK_FAILED,
            ProblemName.MISSING_FUNCTION,
        ):
            self._problem(index, ProblemName(verdict.problem), verdict.message.splitlines()[0])
