"""python -m classroom up|down|status|student-files (up and down as root: make classroom...)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import install
from .accounts import RosterError
from .install import SetupError
from .layout import DEFAULT_PREFIX, REPO, Layout
from .lifecycle import DEFAULT_GRADER, DEFAULT_RELEASE, Options, down, summary, up


def _env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classroom", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="build the classroom and start its hub")
    p_down = sub.add_parser("down", help="stop the hub, remove the accounts and the folder")
    p_status = sub.add_parser("status", help="URL, accounts and whether the hub runs")
    p_files = sub.add_parser(
        "student-files",
        help="into PREFIX with an environment in PREFIX/env (a student image, deploy/): the "
        "helper package and MNIST on its path, the students' nbgrader and Jupyter settings",
    )
    for p in (p_up, p_down, p_status, p_files):
        p.add_argument("--prefix", type=Path, default=DEFAULT_PREFIX)
    p_up.add_argument("--roster", type=Path, default=REPO / "classroom" / "roster.csv")
    p_up.add_argument("--port", type=int, default=8000)
    p_up.add_argument("--ip", default="127.0.0.1", help="0.0.0.0 to serve other machines")
    p_up.add_argument("--grader", default=DEFAULT_GRADER, help="the grader account's name")
    p_up.add_argument("--release", nargs="*", default=list(DEFAULT_RELEASE))
    p_up.add_argument(
        "--authenticator", default="roster", help="roster (demo), pam, or an authenticator class"
    )
    p_up.add_argument(
        "--env", type=_env_pair, action="append", default=[], help="NAME=VALUE for servers"
    )
    p_up.add_argument("--python", type=Path, help="a Python every user can run")
    p_up.add_argument(
        "--full-install",
        action="store_true",
        help="install the environment from the pins (minutes) instead of cloning .venv",
    )
    p_down.add_argument("--keep-env", action="store_true", help="keep python/, env/, proxy/")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            up(
                Options(
                    prefix=args.prefix,
                    roster=args.roster,
                    port=args.port,
                    ip=args.ip,
                    grader=args.grader,
                    release=tuple(args.release),
                    authenticator=args.authenticator,
                    environment=dict(args.env),
                    python=args.python,
                    clone=not args.full_install,
                )
            )
            print(summary(Layout(args.prefix)))
        elif args.command == "down":
            for item in down(args.prefix, keep_env=args.keep_env):
                print(f"classroom: removed {item}")
        elif args.command == "student-files":
            layout = Layout(args.prefix)
            install.install_course_library(layout)
            install.install_student_config(layout)
        else:
            print(summary(Layout(args.prefix)))
    except (PermissionError, RosterError, SetupError, RuntimeError) as err:
        print(f"classroom: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
