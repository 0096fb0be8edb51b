"""``up``, ``down`` and ``status`` of a classroom (``python -m classroom``, as root)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import accounts, environment, hub, install
from .layout import COURSE_ID, FORMGRADE_GROUP, MARKER, REPO, SERVICE_NAME, Layout, read_state
from .layout import write_state as _write_state
from .passwords import hash_password, new_password

DEFAULT_GRADER = "cnn-grader"
DEFAULT_RELEASE = ("01_conv_forward",)


@dataclass
class Options:
    """What ``up`` builds (the command-line flags of ``python -m classroom up``)."""

    prefix: Path
    roster: Path
    port: int = 8000
    ip: str = "127.0.0.1"
    grader: str = DEFAULT_GRADER
    release: tuple[str, ...] = DEFAULT_RELEASE
    gradebook_all: bool = True  # record every assignment (the Formgrader lists them all)
    authenticator: str = "roster"
    environment: dict[str, str] = field(default_factory=dict)
    python: Path | None = None  # a Python every user can run; default: the course's, shared
    clone: bool = True  # clone the course's .venv (hard links) when it can; False: install


def _require_root() -> None:
    if os.geteuid() != 0:
        raise PermissionError("the classroom creates Linux accounts: run it as root")


_started = [time.monotonic()]


def _say(message: str) -> None:
    print(f"classroom [{time.monotonic() - _started[0]:4.0f} s]: {message}", flush=True)


def _readable_by_others(path: Path) -> bool:
    """Whether an unprivileged user (``nobody``) can list ``path``."""
    try:
        return subprocess.run(["ls", str(path)], user="nobody", capture_output=True).returncode == 0
    except OSError:
        return False


def _account(state: dict, username: str, home: Path, comment: str) -> int:
    """The account ``username``: made now (and recorded in the state) or made by an earlier
    ``up`` of this classroom; an account that exists otherwise is refused."""
    made = state.setdefault("created_users", {})
    if username in made and accounts.user_exists(username):
        return made[username]
    if accounts.user_exists(username):
        raise accounts.RosterError(
            f"the account {username} exists already and was not made by this classroom: "
            "choose other names in the roster"
        )
    uid = accounts.create_user(username, home, comment)
    made[username] = uid
    return uid


def up(options: Options) -> dict:
    """Build the classroom under ``options.prefix`` and start its hub. Returns the state,
    with ``passwords`` (user name -> demo password) added."""
    _require_root()
    _started[0] = time.monotonic()
    layout = Layout(options.prefix)
    people = accounts.read_roster(options.roster)
    state = read_state(layout)
    if hub.running_pid(layout) is not None:
        raise RuntimeError(f"a classroom hub already runs from {layout.prefix} (status, down)")
    if layout.prefix.exists() and not (layout.prefix / MARKER).exists():
        if any(layout.prefix.iterdir()):
            raise RuntimeError(f"{layout.prefix} exists and is not a classroom: choose --prefix")
    layout.prefix.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.prefix, 0o755)
    (layout.prefix / MARKER).write_text("made by python -m classroom up; removed by down\n")
    state.update(prefix=str(layout.prefix), course_id=COURSE_ID, service=SERVICE_NAME)
    state["formgrade_group"] = FORMGRADE_GROUP

    def save() -> None:
        _write_state(layout, {k: v for k, v in state.items() if k != "passwords"})

    save()
    _say("a Python every user can run")
    python = options.python or environment.shared_python(layout)
    venv = Path(sys.prefix) if options.clone and sys.prefix != sys.base_prefix else None
    _say(f"the course environment: {environment.make_env(layout, python, venv)}")
    install.install_course_library(layout)
    install.install_student_config(layout)
    install.make_exchange(layout)
    _say("configurable-http-proxy (npm)")
    install.install_proxy(layout)

    if _readable_by_others(REPO / "solutions"):
        _say(
            f"WARNING: {REPO}/solutions is readable by every user of this machine, students "
            "included: build the classroom from a checkout only root can read (chmod 700)"
        )
    _say("accounts")
    comment = "cnn-course classroom"
    grader_uid = _account(state, options.grader, layout.grader_home, f"{comment} grader")
    state["grader"] = {"username": options.grader, "uid": grader_uid}
    save()
    state["people"] = []
    for person in people:
        uid = _account(state, person.username, layout.home_of(person.username), comment)
        state["people"].append({**person.__dict__, "uid": uid})
        save()
    _say(f"the course folder {layout.course} (grader only) and the gradebook")
    install.make_course_folder(layout, options.grader)
    install.prepare_course(
        layout,
        options.grader,
        list(options.release),
        options.environment,
        options.gradebook_all,
        students=[p for p in people if p.role == "student"],
    )

    passwords = {p.username: new_password() for p in people}
    hub.copy_hub_files(layout)
    records = {name: hash_password(pw) for name, pw in passwords.items()}
    install.write_json(layout.hub / "passwords.json", records, mode=0o600)
    lines = [f"{p.username:<20} {p.role:<11} {passwords[p.username]}" for p in people]
    (layout.hub / "accounts.txt").write_text("\n".join(lines) + "\n")
    os.chmod(layout.hub / "accounts.txt", 0o600)
    state.update(
        ip=options.ip,
        port=options.port,
        hub_port=hub.free_port(),
        proxy_api_port=hub.free_port(),
        service_port=hub.free_port(),
        service_token=secrets.token_hex(32),
        authenticator=options.authenticator,
        environment=dict(options.environment),
        release=list(options.release),
    )
    save()
    _say("starting JupyterHub and the Formgrader")
    if hub.port_open(options.port):
        raise RuntimeError(f"port {options.port} is taken: choose another (PORT=... / --port)")
    hub.start(layout, state)
    _say("ready")
    state["passwords"] = passwords
    return state


def summary(layout: Layout) -> str:
    """The URL, the accounts and where things are, for people to read."""
    state = read_state(layout)
    if not state:
        return f"no classroom under {layout.prefix}"
    pid, formgrader = hub.running_pid(layout), hub.running_pid(layout, "formgrader")
    host = "127.0.0.1" if state.get("ip") in (None, "", "0.0.0.0") else state["ip"]
    url = f"http://{host}:{state.get('port')}/"
    try:
        table = (layout.hub / "accounts.txt").read_text()
    except OSError:
        table = "(no accounts yet)\n"
    return (
        f"JupyterHub: {url}  ({'running, pid ' + str(pid) if pid else 'not running'})\n"
        f"Formgrader (instructors): {url}services/{state.get('service')}/formgrader"
        f"  ({'running, pid ' + str(formgrader) if formgrader else 'not running'})\n"
        f"accounts (user name, role, demo password):\n{table}"
        f"course folder (grader {state.get('grader', {}).get('username')} only): {layout.course}\n"
        f"exchange: {layout.exchange}   hub log: {layout.hub / 'jupyterhub.log'}\n"
        "stop and remove everything (accounts included): make classroom-clean"
    )


def down(prefix: Path, keep_env: bool = False) -> list[str]:
    """Stop the hub, remove the accounts ``up`` made and the prefix (with ``keep_env``, keep
    the Python, environment and proxy for a faster next ``up``). Returns what was removed."""
    _require_root()
    layout = Layout(prefix)
    state = read_state(layout)
    removed = []
    hub.stop(layout)
    for username, uid in state.get("created_users", {}).items():
        accounts.remove_user(username, uid)
        removed.append(username)
    if (layout.prefix / MARKER).exists():
        keep = {"python", "env", "proxy", MARKER} if keep_env else set()
        for entry in layout.prefix.iterdir():
            if entry.name in keep:
                continue
            if entry.is_dir() and not entry.is_symlink():
                subprocess.run(["rm", "-rf", "--one-file-system", str(entry)], check=True)
            else:
                entry.unlink()
        if keep_env:
            removed.append(f"{layout.prefix} (kept: python/, env/, proxy/)")
        else:
            layout.prefix.rmdir()
            removed.append(str(layout.prefix))
    return removed
