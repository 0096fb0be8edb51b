"""Notebook set-up shared by every lecture and assignment: seeds, threads, fast mode.

Every notebook's setup cell calls :func:`setup_notebook`. It decides whether the notebook
runs in *fast mode* (small data, one epoch: what the tests and the autograder use) and
pins the number of threads so that several graders or a Binder pod are not oversubscribed.
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass

FAST_ENV = "CNN_COURSE_FAST"
THREADS_ENV = "CNN_COURSE_THREADS"

_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


@dataclass(frozen=True)
class RunConfig:
    """What :func:`setup_notebook` decided, for the notebook to read."""

    fast: bool
    threads: int
    seed: int


def cpu_quota() -> int:
    """Number of CPUs this process may really use.

    Reads the cgroup v2 quota (``cpu.max``) and the affinity mask, so a container limited
    to 1 CPU on a 64-core host answers 1, not 64.
    """
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        available = os.cpu_count() or 1
    for quota_file, period_file in (
        ("/sys/fs/cgroup/cpu.max", None),  # cgroup v2: "quota period"
        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
    ):
        try:
            with open(quota_file, encoding="ascii") as fh:
                fields = fh.read().split()
            if period_file:
                with open(period_file, encoding="ascii") as fh:
                    fields = [fields[0], fh.read().strip()]
            quota, period = fields[:2]
            if quota not in {"max", "-1"}:
                available = min(available, max(1, int(quota) // int(period)))
            break
        except (OSError, ValueError, IndexError):
            continue
    return max(1, available)


def is_fast_mode() -> bool:
    """Fast mode is on when ``CNN_COURSE_FAST`` is truthy or nbgrader is autograding."""
    flag = os.environ.get(FAST_ENV, "").strip().lower()
    if flag in {"1", "true", "yes", "on"}:
        return True
    if flag in {"0", "false", "no", "off"}:
        return False
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def default_threads() -> int:
    """Threads per process: ``CNN_COURSE_THREADS`` if set, else the CPU quota."""
    value = os.environ.get(THREADS_ENV)
    if value:
        return max(1, int(value))
    return cpu_quota()


def pin_threads(threads: int) -> None:
    """Limit numpy/BLAS, TensorFlow and PyTorch to ``threads`` threads.

    Environment variables cover libraries loaded later; frameworks already imported are
    configured directly (TensorFlow only accepts this before it first runs an op).
    """
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    try:  # numpy's BLAS read the variables when it was imported: limit it now as well
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:
        pass
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.set_num_threads(threads)
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
        except RuntimeError:
            pass  # TensorFlow already initialised its thread pools: keep them.


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and (if imported) PyTorch and Keras."""
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    import numpy as np

    np.random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)
    if "keras" in sys.modules:
        sys.modules["keras"].utils.set_random_seed(seed)


def setup_notebook(seed: int = 1, threads: int | None = None, quiet: bool = False) -> RunConfig:
    """Pin threads, seed every library and report fast or full mode.

    Call it in the setup cell, before importing TensorFlow or PyTorch where possible.
    Returns a :class:`RunConfig`; ``config.fast`` is the fast-mode flag.
    """
    threads = threads or default_threads()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ chatter off
    pin_threads(threads)
    seed_everything(seed)
    config = RunConfig(fast=is_fast_mode(), threads=threads, seed=seed)
    if not quiet:
        mode = "FAST (small data, short training)" if config.fast else "full"
        print(f"mode: {mode} | threads: {threads} | seed: {seed}")
    return config
