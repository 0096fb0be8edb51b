"""Start, wait for and stop the classroom's JupyterHub (and what it started)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from .install import grader_env
from .layout import REPO, Layout

HUB_FILES = ("jupyterhub_config.py", "roster_authenticator.py", "passwords.py")


def free_port() -> int:
    """A TCP port nothing listens on now (on the loopback address)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def copy_hub_files(layout: Layout) -> None:
    """The hub's configuration and authenticator, into its own folder (root only)."""
    layout.hub.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.hub, 0o700)
    for name in HUB_FILES:
        shutil.copy2(REPO / "classroom" / name, layout.hub / name)


def _alive(pid: int, needle: str) -> bool:
    """Whether ``pid`` runs and its command line contains ``needle`` (not a reused id)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return needle.encode() in cmdline


def running_pid(layout: Layout, name: str = "jupyterhub") -> int | None:
    """The process id of the hub (or of the ``formgrader``), if it runs."""
    try:
        pid = int((layout.hub / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid, "jupyterhub") else None


def log_tail(layout: Layout, name: str = "jupyterhub", chars: int = 4000) -> str:
    try:
        return (layout.hub / f"{name}.log").read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def _wait_until(ready, process: subprocess.Popen, what: str, layout: Layout, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}):\n{log_tail(layout, what)}")
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{what} did not answer in {timeout_s:.0f} s:\n{log_tail(layout, what)}"
            )
        time.sleep(0.5)


def _hub_healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/hub/health", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def formgrader_env(layout: Layout, state: dict) -> dict[str, str]:
    """The Formgrader's environment: the grader's (course folder first on PYTHONPATH, its own
    Jupyter settings) and what JupyterHub gives a service it starts itself
    (jupyterhub.spawner.Spawner.get_env), for the service ``state["service"]``."""
    service, grader = state["service"], state["grader"]["username"]
    prefix_url = f"/services/{service}/"
    access = json.dumps([f"access:services!service={service}"])
    return {
        **grader_env(layout, grader, state.get("environment", {})),
        "JUPYTERHUB_API_TOKEN": state["service_token"],
        "JPY_API_TOKEN": state["service_token"],
        "JUPYTERHUB_CLIENT_ID": f"service-{service}",
        "JUPYTERHUB_API_URL": f"http://127.0.0.1:{state['hub_port']}/hub/api",
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_HOST": "",
        "JUPYTERHUB_USER": grader,
        "JUPYTERHUB_SERVER_NAME": "",
        "JUPYTERHUB_SERVICE_NAME": service,
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{state['service_port']}",
        "JUPYTERHUB_SERVICE_PREFIX": prefix_url,
        "JUPYTERHUB_OAUTH_CALLBACK_URL": prefix_url + "oauth_callback",
        "JUPYTERHUB_OAUTH_SCOPES": access,
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": access,
        "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES": "[]",
        "JUPYTERHUB_DEFAULT_URL": "/lab",
    }


def _start_formgrader(layout: Layout, state: dict) -> subprocess.Popen:
    account = pwd.getpwnam(state["grader"]["username"])
    with open(layout.hub / "formgrader.log", "ab") as log:
        process = subprocess.Popen(
            [
                str(layout.env / "bin" / "jupyterhub-singleuser"),
                f"--ServerApp.root_dir={layout.course}",
            ],
            cwd=layout.course,
            env=formgrader_env(layout, state),
            user=account.pw_uid,
            group=account.pw_gid,
            extra_groups=[],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (layout.hub / "formgrader.pid").write_text(f"{process.pid}\n")
    return process


def start(layout: Layout, state: dict, timeout_s: float = 240) -> int:
    """Start the hub in the background (own session, log in hub/jupyterhub.log) and the
    Formgrader service (as the grader, log in hub/formgrader.log); wait until both answer.
    Returns the hub's process id."""
    env = {
        "PATH": f"{layout.env / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(layout.hub),
    }
    with open(layout.hub / "jupyterhub.log", "ab") as log:
        process = subprocess.Popen(
            [str(layout.env / "bin" / "jupyterhub"), "-f", str(layout.hub / HUB_FILES[0])],
            cwd=layout.hub,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (layout.hub / "jupyterhub.pid").write_text(f"{process.pid}\n")
    try:
        _wait_until(lambda: _hub_healthy(state["port"]), process, "jupyterhub", layout, timeout_s)
        formgrader = _start_formgrader(layout, state)
        _wait_until(
            lambda: port_open(state["service_port"]), formgrader, "formgrader", layout, timeout_s
        )
    except RuntimeError:
        stop(layout)
        raise
    return process.pid


def _end(pid: int, needle: str, wait_s: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _alive(pid, needle):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while _alive(pid, needle) and time.monotonic() < deadline:
            time.sleep(0.2)


def stop(layout: Layout) -> None:
    """Stop the Formgrader, the hub (it stops the servers and the proxy it started), then the
    proxy if the hub could not."""
    for name in ("formgrader", "jupyterhub"):
        pid = running_pid(layout, name)
        if pid is not None:
            _end(pid, "jupyterhub", wait_s=60)
    try:
        proxy = int((layout.hub / "jupyterhub-proxy.pid").read_text())
    except (OSError, ValueError):
        return
    _end(proxy, "configurable-http-proxy", wait_s=10)
