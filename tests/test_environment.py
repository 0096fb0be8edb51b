"""Set-up files agree with each other: pins, CPU-only PyTorch, CI entry point, README, Binder."""

from __future__ import annotations

import re
import shutil
import subprocess
from urllib.parse import quote

import pytest

from autograder.release import COURSE_PYTHON

TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# Packages that only a CUDA build of torch (or TensorFlow's and-cuda extra) pulls in.
GPU_PACKAGE = re.compile(
    r"^(nvidia-.*|triton|pytorch-triton.*|cuda-.*|.*cudnn.*|.*nccl.*|.*cusparselt.*|.*nvshmem.*"
    r"|tensorflow-gpu|tensorrt.*)$"
)


def _pins(lines) -> dict[str, str]:
    """name (normalised) -> version of every ``name==version`` line."""
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip().lstrip("- ").strip()
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            pins[m.group(1).lower().replace("_", "-").replace(".", "-")] = m.group(2)
    return pins


def _read_pins(root, name):
    return _pins((root / name).read_text().splitlines())


def _pip_section(root) -> list[str]:
    text = (root / "environment.yml").read_text()
    section = text.split("- pip:", 1)[1]
    return [ln.strip()[2:].strip() for ln in section.splitlines() if ln.strip().startswith("- ")]


def test_required_pins_present(root):
    req = _read_pins(root, "requirements.txt")
    assert req["nbgrader"] == "0.9.6"
    assert req["torch"] == "2.13.0+cpu", "torch must be PyTorch's CPU-only build"
    assert req["tensorflow-cpu"].startswith("2.21")
    assert req["jupyterlab"].startswith("4.")
    for name in ("numpy", "matplotlib", "nbval", "tqdm", "ruff", "ipywidgets", "playwright"):
        assert name in req, f"requirements.txt does not pin {name}"


def test_constraints_agree_with_requirements(root):
    req = _read_pins(root, "requirements.txt")
    cons = _read_pins(root, "constraints.txt")
    for name, version in req.items():
        assert cons.get(name) == version, f"constraints.txt pins {name}=={cons.get(name)}"
    # What torch and the browser test pull in is pinned too.
    for name in ("sympy", "networkx", "filelock", "jinja2", "fsspec", "setuptools", "greenlet"):
        assert name in cons, f"constraints.txt does not pin {name}"


@pytest.mark.parametrize("name", ["requirements.txt", "constraints.txt", "environment.yml"])
def test_no_gpu_packages(root, name):
    names = _pins((root / name).read_text().splitlines())
    gpu = sorted(n for n in names if GPU_PACKAGE.match(n))
    assert not gpu, f"{name} pins GPU packages: {gpu}"


def test_environment_yml_installs_the_same_pins_with_cpu_torch(root):
    text = (root / "environment.yml").read_text()
    assert re.search(rf"^\s*- python={re.escape(COURSE_PYTHON)}\s*$", text, re.M), (
        f"environment.yml must pin the course's Python {COURSE_PYTHON} (notebooks carry it)"
    )
    pip = _pip_section(root)
    assert "-r requirements.txt" in pip and "-c constraints.txt" in pip and "-e ." in pip, pip
    # torch comes from the torch page of PyTorch's CPU index as a find-links page: that page
    # lists only torch, so no other package can come from there; no index replaces PyPI.
    assert f"--find-links {TORCH_CPU_INDEX}/torch/" in pip, pip
    assert not [ln for ln in pip if ln.startswith(("--index-url", "--extra-index-url", "-i "))]
    # Any pin written in the file itself must agree with requirements.txt.
    req = _read_pins(root, "requirements.txt")
    for name, version in _pins(pip).items():
        assert req.get(name) == version, f"environment.yml pins {name}=={version}"


def test_makefile_installs_cpu_torch_first_without_waiting(root, tmp_path):
    """The recipe: torch alone from a local wheel (no index), else from PyTorch's CPU index,
    then everything else from PyPI with the constraints."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"
    dry = subprocess.run(
        ["make", "-n", f"VENV={venv}", f"{venv}/.installed"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    local = dry.find("--no-deps --no-index")
    fallback = dry.find(f"--no-deps --index-url {TORCH_CPU_INDEX}")
    rest = dry.find("-r requirements.txt -c constraints.txt")
    assert -1 < local < fallback < rest, dry
    assert '"torch==2.13.0+cpu"' in dry[local:rest], dry
    assert "download.pytorch.org" not in dry[rest:], "the main install must not use that index"


def test_readme_install_takes_cpu_torch(root):
    readme = (root / "README.md").read_text()
    assert f"--index-url {TORCH_CPU_INDEX}" in readme
    assert "torch==2.13.0+cpu" in readme
    assert "-r requirements.txt -c constraints.txt" in readme


def test_ci_runs_the_readme_test_command(root):
    readme = (root / "README.md").read_text()
    ci = (root / ".ci" / "run").read_text()
    assert "make test" in readme and "make demo" in readme
    commands = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.startswith("#")]
    assert commands[-1] == "make test", "the last command of .ci/run must be the README's"
    assert "chromium" in ci, ".ci/run installs Debian's chromium for the browser test"


def test_make_help_lists_every_target(root):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=root, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    listed = {ln.split()[1] for ln in out.stdout.splitlines() if ln.strip().startswith("make ")}
    makefile = (root / "Makefile").read_text()
    phony = set(re.search(r"^\.PHONY:(.*)$", makefile, re.M).group(1).split())
    assert phony <= listed, f"make help does not list {sorted(phony - listed)}"
    assert all(len(ln) < 110 for ln in out.stdout.splitlines()), "one short line per target"


def test_binder_link_is_built_from_binder_repo(root):
    readme = (root / "README.md").read_text()
    settings = re.findall(r"BINDER_REPO\s*=\s*`?([\w.-]+/[\w.-]+)`?", readme)
    assert len(settings) == 1, "README names the Binder repository once: BINDER_REPO = owner/name"
    repo = settings[0]
    links = re.findall(r"https://mybinder\.org/v2/gh/[\w.-]+/[\w.-]+/[^\s)\"'`]*", readme)
    assert links, "README has a Binder launch link"
    for link in links:
        path = link.split("?labpath=", 1)[1] if "?labpath=" in link else ""
        expected = f"https://mybinder.org/v2/gh/{repo}/HEAD"
        if path:
            expected += "?labpath=" + quote(path.replace("%2F", "/"), safe="")
        assert link == expected, f"Binder link {link} is not built from BINDER_REPO={repo}"
        target = path.replace("%2F", "/")
        assert not target or (root / target).exists(), f"Binder opens a missing file: {target}"
