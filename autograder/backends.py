"""Where grading tasks run: in this process, in a local process pool, or on Dask.

Every backend yields :class:`SubmissionResult` objects as they finish; the caller (one
writer) records them. A task whose worker dies is retried once, then reported as failed:
never silently dropped.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from .problems import Problem, ProblemName
from .worker import GradeTask, SubmissionResult, grade_task


def _failed(task: GradeTask, message: str) -> SubmissionResult:
    """A submission whose grading process died twice: failed, with a typed problem."""
    return SubmissionResult(
        task.student,
        task.assignment,
        status="failed",
        problems=[*task.problems, Problem(ProblemName.WORKER_DIED, message)],
    )


def run_serial(tasks: list[GradeTask]) -> Iterator[SubmissionResult]:
    for task in tasks:
        yield grade_task(task)


def run_pool(
    tasks: list[GradeTask], jobs: int, fn: Callable[[GradeTask], SubmissionResult] = grade_task
) -> Iterator[SubmissionResult]:
    """A process pool of ``jobs`` workers.

    When a worker process dies the pool breaks and every unfinished task fails with it; we
    cannot tell which task killed it, so each unfinished task is retried alone in a fresh
    process. A task that kills that one too comes back as a failed result naming the cause.
    """
    context = multiprocessing.get_context("forkserver")
    unfinished: list[GradeTask] = []
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {pool.submit(fn, t): t for t in tasks}
        for future in as_completed(futures):
            try:
                result = future.result()
            except BrokenProcessPool:
                unfinished.append(futures[future])
                continue
            yield result
    for task in unfinished:
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            try:
                yield pool.submit(fn, task).result()
            except BrokenProcessPool as exc:
                yield _failed(task, f"the grading process died twice ({exc})")


def run_dask(tasks: list[GradeTask], scheduler: str, jobs: int) -> Iterator[SubmissionResult]:
    """Dask distributed: ``scheduler='local'`` starts a local cluster of ``jobs`` workers,
    anything else is a scheduler address (``tcp://host:8786``)."""
    from distributed import Client, LocalCluster
    from distributed import as_completed as dask_as_completed

    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(
            n_workers=jobs,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=40,
        )
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        futures = client.map(grade_task, tasks, pure=False, retries=1)
        by_key = {f.key: t for f, t in zip(futures, tasks, strict=True)}
        for future in dask_as_completed(futures):
            try:
                yield future.result()
            except Exception as exc:  # KilledWorker after the retry, or a lost worker
                yield _failed(by_key[future.key], f"{type(exc).__name__}: {exc}")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run(
    tasks: list[GradeTask], jobs: int = 1, scheduler: str | None = None, isolate: bool = False
) -> Iterator[SubmissionResult]:
    """Results of ``tasks`` as they finish. ``isolate`` runs even a single job in a process
    of its own (for callers such as the Jupyter server that must not become a grading
    worker: a worker reaps and kills the processes it did not start itself)."""
    if scheduler:
        return run_dask(tasks, scheduler, jobs)
    if jobs <= 1 and not isolate:
        return run_serial(tasks)
    return run_pool(tasks, max(1, jobs))
