"""Library code is linted and formatted with ruff."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PATHS = ["cnncourse", "autograder", "tests", "benchmarks"]


def _ruff(*args: str, root: Path) -> subprocess.CompletedProcess:
    ruff = Path(sys.executable).parent / "ruff"
    return subprocess.run([str(ruff), *args, *PATHS], cwd=root, capture_output=True, text=True)


def test_ruff_check(root):
    result = _ruff("check", root=root)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format(root):
    result = _ruff("format", "--check", root=root)
    assert result.returncode == 0, result.stdout + result.stderr
