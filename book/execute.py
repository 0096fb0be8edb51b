"""Execute the lectures for the book (and the tests), with a cache of executed copies.

The committed notebooks stay stripped; the book is built from executed copies kept in
``book/_build/cache/<mode>/``. A copy is reused only while its key is unchanged: the key hashes
the notebook itself, everything under ``cnncourse/`` (the helpers every lecture imports), the
data files of ``docs/`` that lectures read (``reproduction.json``, ``figures/``), the pinned
dependencies and the mode (fast or full). Change any of them and that notebook runs again.
``timings.json`` in the cache folder keeps how long each notebook took, so that the next build
starts the longest first.

The tests that execute lectures in fast mode use the same cache (:func:`run_cached`, through
``tests/conftest.py``): a lecture runs once per change, whether the book or a test needs it
first, and a lock per copy makes the second one wait for it rather than run it again. Each
copy records its run's seconds and the kernel's peak memory (``metadata.cnn_course_run``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import nbformat

# Bump when the way notebooks are executed changes, so every cached copy is rebuilt.
EXECUTOR_VERSION = "2"
TIMINGS = "timings.json"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# What the lectures import or read besides themselves (relative to the course root).
DEPENDENCY_GLOBS = (
    "cnncourse/**/*.py",
    "docs/*.json",
    "docs/figures/*",
    "requirements.txt",
    "constraints.txt",
)


@dataclass(frozen=True)
class Executed:
    """One lecture's executed copy: where it is, whether it came from the cache, its time."""

    source: Path
    copy: Path
    cached: bool
    seconds: float


def _files_digest(root: Path, patterns: Iterable[str]) -> str:
    digest = hashlib.sha256()
    files = sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})
    for path in files:
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def dependencies_digest(root: Path) -> str:
    """Hash of everything besides the notebook that decides a lecture's outputs."""
    return _files_digest(root, DEPENDENCY_GLOBS)


def cache_key(notebook: Path, fast: bool, deps_digest: str) -> str:
    """The cache key of one notebook: its bytes, the dependencies' digest and the mode."""
    digest = hashlib.sha256()
    for part in (EXECUTOR_VERSION, "fast" if fast else "full", deps_digest):
        digest.update(part.encode() + b"\0")
    digest.update(notebook.read_bytes())
    return digest.hexdigest()[:20]


def cache_path(cache_dir: Path, relpath: Path, key: str) -> Path:
    """``<cache_dir>/<relpath without .ipynb>.<key>.ipynb``."""
    return cache_dir / relpath.parent / f"{relpath.stem}.{key}.ipynb"


def _stale_copies(cache_dir: Path, relpath: Path, keep: Path) -> list[Path]:
    """Other keys' copies (and kernel logs) of the same notebook."""
    folder = cache_dir / relpath.parent
    if not folder.is_dir():
        return []
    mine = {keep, keep.with_suffix(".kernel.log")}
    pattern = re.compile(re.escape(relpath.stem) + r"\.[0-9a-f]+\.(ipynb|kernel\.log)$")
    return [p for p in folder.iterdir() if pattern.match(p.name) and p not in mine]


RUN_METADATA = "cnn_course_run"


def kernel_env(root: Path, fast: bool, threads: int) -> dict[str, str]:
    """The environment every cached execution adds for its kernel (one meaning per mode)."""
    return {
        "CNN_COURSE_FAST": "1" if fast else "0",
        "CNN_COURSE_THREADS": str(threads),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        # the kernels import this course's cnncourse/, not another checkout's
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
    }


def run_cached(
    root: Path, rel: Path, cache_dir: Path, fast: bool, threads: int, timeout_s: int | None
) -> tuple[nbformat.NotebookNode, float, float, bool]:
    """The executed copy of ``root/rel``: (notebook, seconds, kernel peak MiB, from cache).

    Runs it unless a copy with the same key is cached; a lock per copy makes a second caller
    (another test process, the book) wait and reuse it. A failing cell raises nbclient's
    ``CellExecutionError`` and nothing is cached.
    """
    import fcntl

    from benchmarks.notebook_exec import run_notebook

    source = root / rel
    copy = cache_path(cache_dir, rel, cache_key(source, fast, dependencies_digest(root)))
    copy.parent.mkdir(parents=True, exist_ok=True)
    with open(copy.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if copy.exists():
            nb = nbformat.read(copy, as_version=4)
            run = nb.metadata.get(RUN_METADATA, {})
            return nb, float(run.get("seconds", 0.0)), float(run.get("peak_mb", "nan")), True
        nb = nbformat.read(source, as_version=4)
        result = run_notebook(
            nb,
            source.parent,
            kernel_env(root, fast, threads),
            cell_timeout_s=timeout_s or 3600,
            raise_errors=True,
        )
        result.nb.metadata[RUN_METADATA] = {
            "seconds": round(result.seconds, 1),
            "peak_mb": round(result.peak_mb, 1),
        }
        partial = copy.with_suffix(".partial")
        nbformat.write(result.nb, partial)
        partial.replace(copy)
        for stale in _stale_copies(cache_dir, rel, copy):
            stale.unlink()
        return result.nb, result.seconds, result.peak_mb, False


def run_one(root: str, rel: str, cache_dir: str, fast: bool, threads: int, timeout_s) -> float:
    """Execute one notebook into the cache (in a worker process); its seconds."""
    _, seconds, _, _ = run_cached(Path(root), Path(rel), Path(cache_dir), fast, threads, timeout_s)
    return seconds


def run_order(notebooks: list[Path], timings: dict[str, float]) -> list[Path]:
    """The order to start ``notebooks`` in: longest first, so that a long training lecture
    does not run last and alone. By the seconds each took last time (``timings``); one never
    timed goes first, and among those a later lecture (which trains more) before an earlier.
    """
    position = {rel: i for i, rel in enumerate(notebooks)}
    return sorted(
        notebooks,
        key=lambda rel: (
            rel.as_posix() in timings,
            -timings.get(rel.as_posix(), 0.0),
            -position[rel],
        ),
    )


def execute_all(
    root: Path,
    notebooks: list[Path],
    cache_dir: Path,
    fast: bool,
    jobs: int,
    timeout_s: int | None,
    log=print,
) -> list[Executed]:
    """Executed copies of ``notebooks`` (paths relative to ``root``), from the cache or run.

    ``jobs`` notebooks run at once, each kernel pinned to ``cpus // jobs`` threads. The first
    failure stops the build with the notebook's name and the failing cell's error.
    """
    from cnncourse.runtime import cpu_quota

    deps = dependencies_digest(root)
    threads = max(1, cpu_quota() // max(1, jobs))
    results: dict[Path, Executed] = {}
    todo: list[tuple[Path, Path]] = []
    for rel in notebooks:
        copy = cache_path(cache_dir, rel, cache_key(root / rel, fast, deps))
        if copy.exists():
            results[rel] = Executed(rel, copy, True, 0.0)
        else:
            todo.append((rel, copy))
    timings = _read_timings(cache_dir)
    order = run_order([rel for rel, _ in todo], timings)
    todo.sort(key=lambda item: order.index(item[0]))
    mode = "fast" if fast else "full"
    log(
        f"book: {len(results)} of {len(notebooks)} notebook(s) from the cache, "
        f"{len(todo)} to execute ({mode} mode, {jobs} at once, {threads} thread(s) each)"
    )
    if todo:
        with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {
                pool.submit(
                    run_one, str(root), str(rel), str(cache_dir), fast, threads, timeout_s
                ): (rel, copy)
                for rel, copy in todo
            }
            for future in as_completed(futures):
                rel, copy = futures[future]
                try:
                    seconds = future.result()
                except Exception as error:  # CellExecutionError carries the cell's traceback
                    for other in futures:
                        other.cancel()  # those not started; running ones finish first
                    message = ANSI.sub("", str(error))  # the traceback's terminal colours
                    raise RuntimeError(f"book: executing {rel} failed:\n{message}") from error
                timings[rel.as_posix()] = round(seconds, 1)
                _write_timings(cache_dir, timings)
                log(f"book: executed {rel} in {seconds:.0f} s")
                results[rel] = Executed(rel, copy, False, seconds)
    return [results[rel] for rel in notebooks]


def _read_timings(cache_dir: Path) -> dict[str, float]:
    """Seconds each notebook took when it last ran (``<cache_dir>/timings.json``)."""
    try:
        return json.loads((cache_dir / TIMINGS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_timings(cache_dir: Path, timings: dict[str, float]) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(timings, indent=1, sort_keys=True) + "\n"
    (cache_dir / TIMINGS).write_text(text, encoding="utf-8")
