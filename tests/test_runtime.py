"""Notebook set-up: fast mode, threads, seeds."""

from __future__ import annotations

import numpy as np

from cnncourse import runtime


def test_fast_mode_flags(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setenv(runtime.FAST_ENV, "1")
    assert runtime.is_fast_mode()
    monkeypatch.setenv(runtime.FAST_ENV, "0")
    assert not runtime.is_fast_mode()
    monkeypatch.delenv(runtime.FAST_ENV)
    assert not runtime.is_fast_mode()
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert runtime.is_fast_mode(), "autograding must run the short version"


def test_threads_follow_environment_not_host(monkeypatch):
    monkeypatch.setenv(runtime.THREADS_ENV, "3")
    assert runtime.default_threads() == 3
    monkeypatch.delenv(runtime.THREADS_ENV)
    assert 1 <= runtime.default_threads() <= runtime.cpu_quota()


def test_setup_notebook_pins_and_seeds(monkeypatch, capsys):
    monkeypatch.setenv(runtime.FAST_ENV, "1")
    config = runtime.setup_notebook(seed=5, threads=1)
    assert config.fast and config.threads == 1
    import os

    assert os.environ["OMP_NUM_THREADS"] == "1"
    first = np.random.rand()
    runtime.setup_notebook(seed=5, threads=1, quiet=True)
    assert np.random.rand() == first
    assert "FAST" in capsys.readouterr().out
