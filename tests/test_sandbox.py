"""The sandbox's file system, with the real bubblewrap: what a kernel sees and where it writes.

* Forbidden means absent: for each graded notebook, every top-level module a kernel can
  import (from ``sys.path``, and from any package folder it could add to it) is compared with
  an allow-list, and no library that holds a ready-made answer (SciPy, PyTorch, TensorFlow,
  Keras, JAX, ...) and no course module that implements a graded function exists anywhere
  on its file system.
* The kernel is an unprivileged user with no capabilities; the two folders it shares with
  the grader cannot be replaced; a package or course under /tmp stays visible while /tmp is
  private (a fresh clone in /tmp once graded every demo submission "failed").
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import sandbox
from autograder.limits import Limits
from cnncourse.checks.registry import NOTEBOOKS

BWRAP = sandbox.bwrap_path()
pytestmark = pytest.mark.skipif(BWRAP is None, reason="bubblewrap is not available here")

# What a graded kernel may import besides the standard library, by notebook family. A new
# dependency that shows up here is a decision: add it only if no exercise can use it as a
# ready-made answer.
KERNEL_MODULES = {
    "IPython", "PIL", "asttokens", "comm", "contourpy", "cycler", "dateutil", "debugpy",
    "decorator", "executing", "fontTools", "ipykernel", "ipykernel_launcher",
    "ipython_pygments_lexers", "ipywidgets", "jedi", "jupyter", "jupyter_client",
    "jupyter_core", "jupyterlab_widgets", "kiwisolver", "matplotlib", "matplotlib_inline",
    "mpl_toolkits", "nest_asyncio2", "numpy", "packaging", "parso", "pexpect", "platformdirs",
    "prompt_toolkit", "psutil", "ptyprocess", "pure_eval", "pygments", "pylab", "pyparsing",
    "stack_data", "tornado", "tqdm", "traitlets", "typing_extensions", "tzdata", "wcwidth",
    "widgetsnbextension", "zmq", "cnncourse", "__editable___cnn_course_0_1_0_finder",
    "threadpoolctl",
}  # fmt: skip
KERAS_MODULES = {
    "keras", "tensorflow", "absl", "astunparse", "certifi", "charset_normalizer", "clang",
    "flatbuffers", "gast", "google", "grpc", "h5py", "idna", "markdown_it", "mdurl",
    "ml_dtypes", "namex", "opt_einsum", "optree", "pasta", "requests", "rich", "setuptools",
    "_distutils_hack", "six", "termcolor", "urllib3", "wheel", "wrapt", "pkg_resources",
}  # fmt: skip
TORCH_MODULES = {
    "torch", "torchgen", "functorch", "filelock", "fsspec", "isympy", "jinja2", "markupsafe",
    "mpmath", "networkx", "sympy", "setuptools", "_distutils_hack", "pkg_resources",
}  # fmt: skip
# Never on the sandbox's disk (anywhere, not only on sys.path) unless the notebook needs it:
# each library by a file that only its real copy has.
READY_MADE = {
    "scipy": "scipy/signal/__init__.py", "torch": "torch/nn/functional.py",
    "tensorflow": "tensorflow/python/__init__.py", "keras": "keras/src/layers/__init__.py",
    "jax": "jax/lax/__init__.py", "skimage": "skimage/filters/__init__.py",
    "cv2": "cv2/__init__.py", "sklearn": "sklearn/base.py", "tf_keras": "tf_keras/__init__.py",
    "autograder": "autograder/grading.py", "cnncourse.architecture": "cnncourse/architecture.py",
    "cnncourse.oracles": "cnncourse/oracles.py", "cnncourse.checks": "cnncourse/checks/engine.py",
}  # fmt: skip
# Course modules that implement a graded function: never visible to any graded notebook.
COURSE_REFERENCE = {"architecture", "grading_models", "models", "lecture_numpy", "oracles",
                    "checks", "network_views", "explorer", "modern_nets"}  # fmt: skip

INSPECT = r"""
import json, os, pkgutil, sys, sysconfig
stdlib = tuple(sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib"))
names = {m.name for m in pkgutil.iter_modules()
         if not getattr(m.module_finder, "path", "").startswith(stdlib)}
found = []
for top in ("/usr", "/etc", "/opt", "/root", "/work", "/tmp", sys.prefix, sys.base_prefix):
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
        for name in files:
            path = os.path.join(folder, name)
            found += [path for marker in WATCH if path.endswith("/" + marker)]
import cnncourse
course = sorted(os.listdir(os.path.dirname(cnncourse.__file__)))
status = {l.split(":")[0]: l.split(":")[1].strip() for l in open("/proc/self/status") if ":" in l}
print(json.dumps({"modules": sorted(names), "found": found, "course": course,
                  "uid": os.getuid(), "cap": status["CapEff"]}))
"""


def _sandbox(tmp_path: Path, notebook: str = "") -> sandbox.Sandbox:
    workdir, runtime = tmp_path / "student", tmp_path / "runtime"
    workdir.mkdir()
    (workdir / "answer.txt").write_text("the student's file")
    box = sandbox.Sandbox(
        workdir=workdir,
        runtime_dir=runtime,
        limits=Limits(),
        bwrap=BWRAP,
        view=sandbox.KernelView.for_notebook(notebook),
    )
    box.prepare()
    return box


def _run(box: sandbox.Sandbox, code: str) -> subprocess.CompletedProcess:
    command = box.wrap([sys.executable, "-c", code])
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS))
def test_forbidden_libraries_are_absent(tmp_path, notebook):
    entry = NOTEBOOKS[notebook]
    allowed = set(KERNEL_MODULES)
    if "keras" in entry.libraries:
        allowed |= KERAS_MODULES
    if "torch" in entry.libraries:
        allowed |= TORCH_MODULES
    watch = [marker for name, marker in READY_MADE.items() if name not in allowed]
    done = _run(_sandbox(tmp_path, notebook), f"WATCH = {sorted(watch)!r}\n" + INSPECT)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)
    unexpected = set(seen["modules"]) - allowed
    assert not unexpected, f"{notebook}: importable but not allowed: {sorted(unexpected)}"
    assert not seen["found"], f"{notebook}: ready-made answers on disk: {seen['found'][:5]}"
    modules = {name.removesuffix(".py") for name in seen["course"]}
    assert not modules & COURSE_REFERENCE, f"{notebook}: course reference code is visible"
    assert {"runtime", "data", "plots"} <= modules
    assert seen["uid"] == sandbox.KERNEL_UID and seen["cap"] == "0000000000000000"


def test_packages_under_tmp_stay_visible(tmp_path, monkeypatch):
    assert str(tmp_path).startswith("/tmp/"), "this test needs pytest's folders under /tmp"
    package_root = tmp_path / "checkout" / "site"
    package_root.mkdir(parents=True)
    (package_root / "course_marker.py").write_text("WHERE = 'under /tmp'\n")
    system = sandbox._system_paths()
    monkeypatch.setattr(sandbox, "_system_paths", lambda: [*system, package_root])
    done = _run(
        _sandbox(tmp_path),
        f"import sys; sys.path.insert(0, {str(package_root)!r}); "
        "import course_marker, cnncourse.runtime; print(course_marker.WHERE)",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "under /tmp"


def test_tmp_is_private_and_the_rest_of_tmp_is_hidden(tmp_path):
    outside = tmp_path / "grader-only.txt"
    outside.write_text("secret")
    box = _sandbox(tmp_path)
    done = _run(
        box,
        "import os, pathlib; "
        "pathlib.Path('/tmp/written-inside').write_text('x'); "
        f"print(os.path.exists({str(outside)!r}), open('answer.txt').read())",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(maxsplit=1) == ["False", "the student's file\n"]
    assert not Path("/tmp/written-inside").exists()


def test_shared_folders_cannot_be_replaced_and_the_rest_is_read_only(tmp_path):
    """The kernel can add entries to the channel and the sockets' folder, never move or
    replace them (they are mount points), and cannot write into the course's package or the
    environment."""
    box = _sandbox(tmp_path)
    code = f"""
import os, cnncourse
results = []
for path in ({str(box.channel_dir)!r}, {str(box.ipc_dir)!r}):
    try:
        os.rename(path, path + ".moved")
        results.append("moved")
    except OSError as exc:
        results.append(exc.errno)
for path in (os.path.dirname(cnncourse.__file__), os.path.dirname(os.__file__)):
    try:
        open(os.path.join(path, "filler.py"), "w").write("x = 1")
        results.append("written")
    except OSError as exc:
        results.append(exc.errno)
open({str(box.channel_dir / "mine.txt")!r}, "w").write("a kernel's own entry")
print(results)
"""
    done = _run(box, code)
    assert done.returncode == 0, done.stderr
    assert "moved" not in done.stdout and "written" not in done.stdout, done.stdout
    assert (box.channel_dir / "mine.txt").read_text() == "a kernel's own entry"
    assert box.channel_dir.is_dir() and not box.channel_dir.is_symlink()
