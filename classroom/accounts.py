"""The roster, the Linux accounts made from it, and the demo passwords.

A roster is a CSV file with a header ``username,role,name``; role is ``instructor`` or
``student``; lines starting with ``#`` are comments. Every person gets a Linux account with a
home of mode 0700 under the classroom's prefix (students' servers run as that account); the
grader account (not a person) owns the course folder and runs the Formgrader. Accounts are
only ever removed if this module created them (their names are in the state file).
"""

from __future__ import annotations

import csv
import io
import os
import pwd
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROLES = ("instructor", "student")
# JupyterHub lower-cases user names; Linux wants short, plain ones.
USERNAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


class RosterError(ValueError):
    """The roster file is malformed (the message says where)."""


@dataclass(frozen=True)
class Person:
    """One line of the roster."""

    username: str
    role: str
    name: str = ""


def read_roster(path: Path) -> list[Person]:
    """The people of a roster file, in file order."""
    text = path.read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    if reader.fieldnames is None or not {"username", "role"} <= set(reader.fieldnames):
        raise RosterError(f"{path}: the header must name the columns username,role[,name]")
    people, seen = [], set()
    for row in reader:
        username, role = (row.get("username") or "").strip(), (row.get("role") or "").strip()
        where = f"{path}: {username or '(empty name)'}"
        if not USERNAME.match(username):
            raise RosterError(f"{where}: a user name is lower-case letters, digits and '-'")
        if role not in ROLES:
            raise RosterError(f"{where}: role {role!r} is not one of {', '.join(ROLES)}")
        if username in seen:
            raise RosterError(f"{where}: listed twice")
        seen.add(username)
        people.append(Person(username, role, (row.get("name") or "").strip()))
    if not any(p.role == "instructor" for p in people):
        raise RosterError(f"{path}: no instructor")
    return people


def user_exists(username: str) -> bool:
    try:
        pwd.getpwnam(username)
    except KeyError:
        return False
    return True


def create_user(username: str, home: Path, comment: str) -> int:
    """A Linux account with its own group and a home of mode 0700; returns its uid."""
    home.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "useradd",
            "--create-home",
            "--home-dir",
            str(home),
            "--shell",
            "/bin/bash",
            "--user-group",
            "--comment",
            comment,
            username,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    os.chmod(home, 0o700)
    return pwd.getpwnam(username).pw_uid


def processes_of(uid: int) -> list[int]:
    """Ids of the processes running as ``uid`` (read from /proc). A zombie (ended, not yet
    reaped by its parent: e.g. reparented to a subreaper that is busy) runs nothing and is
    left out."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid != uid:
                    continue
                stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
            except (FileNotFoundError, ProcessLookupError):
                continue
            if stat.rpartition(")")[2].split()[:1] != ["Z"]:
                pids.append(int(entry.name))
    return pids


def remove_user(username: str, uid: int) -> None:
    """End what still runs as the account (each process by its id), then delete the account,
    its group and its home. Only for accounts this module created."""
    try:
        if pwd.getpwnam(username).pw_uid != uid:
            return  # not the account we made: leave it alone
    except KeyError:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in processes_of(uid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while processes_of(uid) and time.monotonic() < deadline:
            time.sleep(0.2)
    subprocess.run(["userdel", "--remove", username], check=True, capture_output=True, text=True)
