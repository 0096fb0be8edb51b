#!/usr/bin/env bash
# Install the course environment into ENV_DIR so that every Linux user can run it:
#   classroom/install_env.sh ENV_DIR [PYTHON]
# PYTHON (default /usr/bin/python3.11, Debian's) must itself be runnable by every user: a venv
# made from a Python under one user's home (pyenv in /root) cannot be started by anyone else.
# The steps are the Makefile's ($(STAMP)): torch's CPU build alone first, from a local wheel
# if pip has one, else from PyTorch's CPU index; then requirements.txt with constraints.txt;
# then the classroom's own pins (classroom/requirements.txt: JupyterHub). The course's helper
# package is not installed here (see classroom/classroom.py: a .pth file names a shared copy).
# deploy/image/Dockerfile runs this same script; tests/test_deploy.py checks that.
set -euo pipefail
umask 022  # everything installed is readable by every user
repo=$(cd "$(dirname "$0")/.." && pwd)
env_dir=$1
python=${2:-/usr/bin/python3.11}
torch_index=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
torch_pin=$(grep -m1 -E '^torch==' "$repo/requirements.txt")

test -x "$env_dir/bin/python" || "$python" -m venv "$env_dir"
pip=("$env_dir/bin/python" -m pip install --quiet)
if "${pip[@]}" --no-deps --no-index "$torch_pin" 2>/dev/null; then
    echo "$torch_pin: from a local wheel (or already installed)"
else
    echo "$torch_pin: from $torch_index"
    "${pip[@]}" --no-deps --index-url "$torch_index" "$torch_pin"
fi
"${pip[@]}" -r "$repo/requirements.txt" -c "$repo/constraints.txt"
"${pip[@]}" -r "$repo/classroom/requirements.txt" -c "$repo/constraints.txt"
