"""Collect results: run the student's functions in the kernel on the grader's inputs.

:class:`KernelCalls` is the grader's :class:`~cnncourse.checks.engine.Runner`. For a batch
of cases it builds the inputs *here*, writes them as plain data into a fresh folder of the
result channel (a folder the sandbox shares with the grader), asks the kernel to run
:func:`cnncourse.checks.calls.run_probe` on them (its source is sent with the request, so
nothing in the kernel's own files is trusted), and reads the result file back within a size
limit, refusing pickle. Anything missing, malformed, oversized or duplicated becomes a named
failure of those cases; nothing the kernel writes can do more than fail its own cases.

The grader's hand cannot be steered: the channel folder is opened once
(:class:`ChannelFolder`) and every request folder and file is made, read, listed and removed
*relative to that descriptor* with ``O_NOFOLLOW`` (``mkdirat``/``openat``), so a link, a
renamed folder or a replaced parent that the kernel leaves behind makes the grader refuse a
result, never write or read a file of the host. The kernel only learns the path strings it
must use inside its sandbox.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cnncourse.checks import channel
from cnncourse.checks.engine import Case, Runner, Spec

from .problems import ProblemName

# The kernel side of a request, sent as text with every request (nothing of the kernel's own
# files is trusted): channel, adapters, calls, each executed into one namespace.
PROBE_SOURCES = [
    (name, (Path(channel.__file__).parent / f"{name}.py").read_text(encoding="utf-8"))
    for name in channel.PROBE_MODULES
]


class ProbeTimeout(Exception):
    """The kernel did not answer within the test cell's time budget."""


_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def read_regular_file(path: Path | str, max_bytes: int, dir_fd: int | None = None) -> bytes:
    """The bytes of ``path`` if it is a regular file (never a link) of at most ``max_bytes``;
    with ``dir_fd``, ``path`` is a name relative to that open folder.

    Raises ``FileNotFoundError``, ``IsADirectoryError`` (anything not a regular file, links
    included) or ``OverflowError`` (too large).
    """
    fd = os.open(path, _READ_FLAGS, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise IsADirectoryError(f"{Path(path).name} is not a regular file")
        if info.st_size > max_bytes:
            raise OverflowError(f"{info.st_size} bytes")
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > max_bytes:
                raise OverflowError(f"over {max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _probe_code(request: str, result: str) -> str:
    lines = ["_cnn_probe = {}"]
    for name, source in PROBE_SOURCES:
        lines.append(f"exec(compile({source!r}, '<grader probe: {name}>', 'exec'), _cnn_probe)")
    lines += [f"_cnn_probe['run_probe'](globals(), {request!r}, {result!r})", "del _cnn_probe", ""]
    return "\n".join(lines)


def _write_new(folder: int, name: str, data: bytes) -> None:
    """Create ``name`` in the open ``folder`` (never through a link, never an existing file)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, 0o600, dir_fd=folder)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _text(value, limit: int = channel.MAX_STRING) -> str:
    return value[:limit] if type(value) is str else ""


def _clean(item: dict) -> dict:
    """An outcome from the kernel with every field of the expected type (or dropped)."""
    error = item.get("error")
    forbidden = item.get("forbidden")
    return {
        "status": item["status"],
        "value": item.get("value"),
        "args_after": item.get("args_after"),
        "forbidden": [_text(f, 100) for f in forbidden] if type(forbidden) is list else [],
        "error": {k: _text(error.get(k)) for k in ("type", "message", "where")}
        if type(error) is dict
        else None,
    }


def _channel_failure(name: str, message: str) -> dict:
    return {"status": "channel", "problem": name, "message": message}


class ChannelFolder:
    """The result channel's folder, opened once (never through a link); its entries are used
    only relative to this descriptor. ``path`` is how the kernel names it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> ChannelFolder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class KernelCalls(Runner):
    """Runs cases in the kernel through the result channel.

    Args:
        execute: ``execute(code, timeout_s) -> reply or None`` runs code silently in the
            kernel (raises nbclient's ``DeadKernelError`` if it dies).
        channel: the folder shared with the sandbox, opened by the grader.
        cpu_seconds: the kernel's CPU time so far (for the speed checks).
        deadline: ``time.monotonic()`` value after which no more requests are sent.
        max_bytes: largest result file accepted.
    """

    def __init__(
        self,
        execute: Callable[[str, float], dict | None],
        channel_folder: ChannelFolder,
        deadline: float,
        max_bytes: int = channel.DEFAULT_MAX_BYTES,
        cpu_seconds: Callable[[], float] | None = None,
    ):
        self.execute = execute
        self.channel = channel_folder
        self.deadline = deadline
        self.max_bytes = max_bytes
        self.cpu_seconds = cpu_seconds

    def timed(self, spec: Spec, case: Case) -> tuple[float, dict]:
        """The CPU time the kernel spent on one request of one call, counted by the
        operating system (the kernel's own clock is not trusted; CPU time does not grow when
        other jobs load the machine), and its outcome (which the caller judges). Without a
        CPU count, the round trip's wall time."""
        clock = self.cpu_seconds or time.monotonic
        start = clock()
        outcome = self.run(spec, [case])[0]
        return clock() - start, outcome

    def run(
        self, spec: Spec, cases: Sequence[Case], substitutes: list[dict] | None = None
    ) -> list[dict]:
        calls = []
        for i, case in enumerate(cases):
            args, kwargs = spec.build(case)
            call = {
                "id": i,
                "target": spec.target,
                "adapter": spec.adapter,
                "args": list(args),
                "kwargs": kwargs,
            }
            if substitutes:
                call["substitute"] = substitutes[i]
            calls.append(call)
        # No library-call watch in the kernel: the policy is judged by the grader alone.
        request = {"calls": calls, "forbidden": []}
        name = secrets.token_hex(8)
        os.mkdir(name, 0o700, dir_fd=self.channel.fd)
        try:
            folder = os.open(
                name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=self.channel.fd
            )
        except OSError:
            self._remove(name)
            return [
                _channel_failure(ProblemName.RESULT_MALFORMED, "the request folder was replaced")
            ] * len(calls)
        try:
            _write_new(folder, "request.npz", channel.pack(request))
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise ProbeTimeout("no time left for this test cell")
            where = self.channel.path / name
            code = _probe_code(str(where / "request.npz"), str(where / "result.npz"))
            reply = self.execute(code, remaining)
            if reply is None:
                raise ProbeTimeout("the kernel did not answer in time")
            return self._read(folder, len(calls), reply)
        finally:
            os.close(folder)
            # The grader's own files never count against the student's disk limit.
            self._remove(name)

    def _remove(self, name: str) -> None:
        """Remove the entry ``name`` of the channel folder: a folder with what is in it, or
        whatever a kernel put in its place (a link is removed, never followed)."""
        try:
            info = os.lstat(name, dir_fd=self.channel.fd)
        except OSError:
            return
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(name, dir_fd=self.channel.fd, ignore_errors=True)
        else:
            try:
                os.unlink(name, dir_fd=self.channel.fd)
            except OSError:
                pass

    def _read(self, folder: int, n_calls: int, reply: dict) -> list[dict]:
        names = sorted(os.listdir(folder))
        if names != ["request.npz", "result.npz"]:
            if "result.npz" not in names:
                content = reply.get("content", {})
                why = ""
                if content.get("status") == "error":
                    why = f" (the request raised {content.get('ename')}: {content.get('evalue')})"
                failure = _channel_failure(
                    ProblemName.RESULT_MISSING, f"the kernel wrote no result{why}"
                )
            else:
                extra = ", ".join(n for n in names if n not in ("request.npz", "result.npz"))
                failure = _channel_failure(
                    ProblemName.RESULT_DUPLICATED,
                    f"unexpected files in the result folder: {extra[:200]}",
                )
            return [failure] * n_calls
        try:
            data = read_regular_file("result.npz", self.max_bytes, dir_fd=folder)
        except OverflowError:
            return [
                _channel_failure(ProblemName.RESULT_TOO_LARGE, "the result is over the size limit")
            ] * (n_calls)
        except OSError as exc:
            return [
                _channel_failure(ProblemName.RESULT_MALFORMED, f"unreadable result ({exc})")
            ] * n_calls
        try:
            result = channel.unpack(data, self.max_bytes)
        except channel.ChannelError as exc:
            name = (
                ProblemName.RESULT_TOO_LARGE
                if "limit" in str(exc)
                else ProblemName.RESULT_MALFORMED
            )
            return [_channel_failure(name, f"the result is not plain data: {exc}")] * n_calls
        except MemoryError:
            return [
                _channel_failure(ProblemName.RESULT_TOO_LARGE, "the result is too large to read")
            ] * n_calls
        finally:
            del data
        return self._outcomes(result, n_calls)

    @staticmethod
    def _outcomes(result, n_calls: int) -> list[dict]:
        items = result.get("calls") if type(result) is dict else None
        if type(items) is not list:
            return [
                _channel_failure(ProblemName.RESULT_MALFORMED, "the result has no list of calls")
            ] * (n_calls)
        by_id: dict[int, dict] = {}
        for item in items:
            if type(item) is not dict or type(item.get("id")) is not int:
                return [
                    _channel_failure(ProblemName.RESULT_MALFORMED, "a call without an id")
                ] * n_calls
            if item["id"] in by_id:
                return [
                    _channel_failure(
                        ProblemName.RESULT_DUPLICATED, f"case {item['id']} answered twice"
                    )
                ] * n_calls
            by_id[item["id"]] = item
        outcomes = []
        for i in range(n_calls):
            item = by_id.get(i)
            if item is None:
                outcomes.append(
                    _channel_failure(ProblemName.RESULT_MISSING, f"no result for case {i}")
                )
            elif item.get("status") not in ("returned", "raised", "missing"):
                outcomes.append(
                    _channel_failure(ProblemName.RESULT_MALFORMED, f"case {i}: unknown status")
                )
            else:
                outcomes.append(_clean(item))
        if len(by_id) > n_calls:
            return [
                _channel_failure(ProblemName.RESULT_DUPLICATED, "more results than cases")
            ] * n_calls
        return outcomes
