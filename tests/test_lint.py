"""Code is linted and formatted with ruff, and the libraries type-check with mypy (the same
commands as `make lint`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PATHS = ["cnncourse", "autograder", "tests", "benchmarks", "classroom", "deploy", "book"]


def _ruff(*args: str, root: Path) -> subprocess.CompletedProcess:
    ruff = Path(sys.executable).parent / "ruff"
    return subprocess.run([str(ruff), *args, *PATHS], cwd=root, capture_output=True, text=True)


def test_ruff_check(root):
    result = _ruff("check", root=root)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format(root):
    result = _ruff("format", "--check", root=root)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy(root):
    """``mypy`` (configured in pyproject.toml: autograder and cnncourse) finds no error."""
    mypy = Path(sys.executable).parent / "mypy"
    result = subprocess.run([str(mypy)], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
