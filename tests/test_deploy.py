"""deploy/ (a class on Kubernetes) parses and agrees with the classroom and the Makefile."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from traitlets.config.loader import PyFileConfigLoader

from autograder.release import COURSE_PYTHON
from classroom.hub import formgrader_env
from classroom.layout import FORMGRADE_GROUP, SERVICE_NAME, Layout

EXCHANGE = "/srv/nbgrader/exchange"


def _yaml(root: Path, name: str) -> list:
    return list(yaml.safe_load_all((root / "deploy" / name).read_text()))


def test_every_yaml_file_parses(root):
    files = sorted((root / "deploy").rglob("*.yaml"))
    assert len(files) >= 5, files
    for path in files:
        docs = list(yaml.safe_load_all(path.read_text()))
        assert docs and all(isinstance(d, dict) for d in docs), path


def test_image_installs_like_make(root):
    docker = (root / "deploy" / "image" / "Dockerfile").read_text()
    assert re.search(rf"^FROM python:{re.escape(COURSE_PYTHON)}-", docker, re.M), docker[:300]
    run = " ".join(ln for ln in docker.splitlines() if ln.startswith(("RUN", " ")))
    assert "classroom/install_env.sh /opt/cnn-course/env" in run
    assert "-m classroom student-files --prefix /opt/cnn-course" in run
    assert f"CNN_COURSE_EXCHANGE={EXCHANGE}" in docker


def test_install_script_runs_the_makefile_steps(root):
    """classroom/install_env.sh (the image's and the classroom's install) takes the same
    steps in the same order as the Makefile: torch alone from a local wheel, else PyTorch's
    CPU index; then requirements.txt with constraints.txt."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    script = (root / "classroom" / "install_env.sh").read_text()
    make = subprocess.run(
        ["make", "-n", "VENV=/nonexistent/venv", "/nonexistent/venv/.installed"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    steps = ["--no-deps --no-index", "--no-deps --index-url", "-r requirements.txt -c"]
    plain = script.replace('"$repo/', "").replace('"', "")
    for text in (make, plain):
        positions = [text.find(step) for step in steps]
        assert -1 < positions[0] < positions[1] < positions[2], (steps, text)
    index = re.search(r"^TORCH_INDEX \?= (\S+)", (root / "Makefile").read_text(), re.M)
    assert f"TORCH_INDEX:-{index.group(1)}" in script
    assert (
        "grep -m1 -E '^torch=='" in script
        and "grep -m1 -E '^torch=='" in (root / "Makefile").read_text()
    )


def test_z2jh_values_match_the_classroom(root):
    (values,) = _yaml(root, "z2jh/values.yaml")
    hub, single = values["hub"], values["singleuser"]
    assert list(hub["services"]) == [SERVICE_NAME]
    role = hub["loadRoles"][FORMGRADE_GROUP]
    assert role["groups"] == [FORMGRADE_GROUP]
    assert f"access:services!service={SERVICE_NAME}" in role["scopes"]
    assert FORMGRADE_GROUP in hub["extraConfig"]["groups"]
    assert single["extraEnv"]["CNN_COURSE_EXCHANGE"] == EXCHANGE
    mounts = {m["name"]: m["mountPath"] for m in single["storage"]["extraVolumeMounts"]}
    assert mounts["exchange"] == EXCHANGE
    (claim,) = _yaml(root, "z2jh/exchange-pvc.yaml")
    volumes = single["storage"]["extraVolumes"]
    assert volumes[0]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_one_image_for_students_formgrader_and_workers(root):
    (values,) = _yaml(root, "z2jh/values.yaml")
    image = f"{values['singleuser']['image']['name']}:{values['singleuser']['image']['tag']}"
    (dask,) = _yaml(root, "dask/values.yaml")
    for part in ("scheduler", "worker"):
        assert f"{dask[part]['image']['repository']}:{dask[part]['image']['tag']}" == image
    deployment = next(
        d for d in _yaml(root, "formgrader/formgrader.yaml") if d["kind"] == "Deployment"
    )
    pod = deployment["spec"]["template"]["spec"]
    assert {c["image"] for c in pod["containers"] + pod["initContainers"]} == {image}


def test_formgrader_pod_is_the_classroom_service(root, tmp_path):
    """The cluster's Formgrader gets the service settings the classroom gives its own."""
    docs = _yaml(root, "formgrader/formgrader.yaml")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    state = {
        "service": SERVICE_NAME,
        "service_token": "x",
        "hub_port": 8081,
        "service_port": 8888,
        "grader": {"username": "jovyan"},
    }
    ours = formgrader_env(Layout(tmp_path), state)
    for name in (
        "JUPYTERHUB_SERVICE_NAME",
        "JUPYTERHUB_SERVICE_PREFIX",
        "JUPYTERHUB_CLIENT_ID",
        "JUPYTERHUB_OAUTH_CALLBACK_URL",
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES",
        "JUPYTERHUB_DEFAULT_URL",
    ):
        assert env[name] == ours[name], name
    assert "JUPYTERHUB_API_TOKEN" in env and env["CNN_COURSE_EXCHANGE"] == EXCHANGE
    assert env["PYTHONPATH"] == container["workingDir"]
    (service,) = [d for d in docs if d["kind"] == "Service"]
    (values,) = _yaml(root, "z2jh/values.yaml")
    url = values["hub"]["services"][SERVICE_NAME]["url"]
    assert url == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"


def test_gradebook_url_reaches_the_formgrader(root, tmp_path, monkeypatch):
    (pg,) = _yaml(root, "postgres/values.yaml")
    text = (root / "deploy" / "postgres" / "values.yaml").read_text()
    url = re.search(r"postgresql://(\w+):PASSWORD@[\w.-]+:5432/(\w+)", text)
    assert url and url.groups() == (pg["auth"]["username"], pg["auth"]["database"])
    monkeypatch.setenv("NBGRADER_DB_URL", "postgresql://grader:pw@db:5432/gradebook")
    config = PyFileConfigLoader(
        "grader_nbgrader_config.py", path=str(root / "deploy" / "formgrader")
    ).load_config()
    assert config.CourseDirectory.db_url == "postgresql://grader:pw@db:5432/gradebook"
