"""Set-up files agree with each other: pins, CI entry point, README commands."""

from __future__ import annotations

import re


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.strip().lstrip("- ").strip()
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_environment_yml_matches_requirements(root):
    req = _pins((root / "requirements.txt").read_text().splitlines())
    env_text = (root / "environment.yml").read_text()
    assert "python=3.11" in env_text
    env = _pins(env_text.split("- pip:", 1)[1].splitlines())
    assert env == req, (
        f"environment.yml pins differ from requirements.txt: {set(env.items()) ^ set(req.items())}"
    )


def test_required_pins_present(root):
    req = _pins((root / "requirements.txt").read_text().splitlines())
    assert req["nbgrader"] == "0.9.6"
    assert req["torch"] == "2.13.0"
    assert req["tensorflow-cpu"].startswith("2.21")
    assert req["jupyterlab"].startswith("4.")
    for name in ("numpy", "matplotlib", "nbval", "tqdm", "ruff"):
        assert name in req


def test_constraints_agree_with_requirements(root):
    req = _pins((root / "requirements.txt").read_text().splitlines())
    cons = _pins((root / "constraints.txt").read_text().splitlines())
    for name, version in req.items():
        assert cons.get(name) == version, f"constraints.txt pins {name}=={cons.get(name)}"


def test_ci_runs_the_readme_test_command(root):
    readme = (root / "README.md").read_text()
    ci = (root / ".ci" / "run").read_text()
    assert "make test" in readme and "make demo" in readme
    commands = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.startswith("#")]
    assert commands[-1] == "make test", "the last command of .ci/run must be the README's"
