"""The plain-data channel between a kernel and the grader, and the grader's reading of it.

Fast unit tests of the trusted side: what the kernel may hand back is data only, within
limits, and anything else is a named failure of the cases it concerns, never a crash.
"""

from __future__ import annotations

import io
import os
import time
import zipfile

import numpy as np
import pytest

from autograder.collect import ChannelFolder, KernelCalls, ProbeTimeout, read_regular_file
from cnncourse.checks import calls, channel
from cnncourse.checks.channel import ChannelError, NumpyScalar, Other
from cnncourse.checks.engine import make_case
from cnncourse.checks.registry import get_spec


def test_round_trip_keeps_types_shapes_and_dtypes():
    value = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "t": (1, 2.5, "x", None, True, np.float64(0.25), np.int32(7)),
        "l": [np.zeros((0, 3)), {"k": [1, 2]}],
    }
    back = channel.unpack(channel.pack(value))
    assert back["a"].dtype == np.float32 and back["a"].shape == (2, 3)
    assert back["t"][:5] == (1, 2.5, "x", None, True)
    assert back["t"][5] == NumpyScalar("float64", 0.25)
    assert back["t"][6] == NumpyScalar("int32", 7)
    assert type(back["l"]) is list and back["l"][0].shape == (0, 3)


def test_normalize_turns_objects_into_their_type_name():
    class Anything:
        def __eq__(self, other):
            return True

    assert type(channel.normalize(Anything())) is Other
    assert type(channel.normalize(np.ma.masked_array([1.0]))) is Other  # not exactly an ndarray
    assert type(channel.normalize(np.array([object()]))) is Other
    assert channel.normalize(NumpyScalar("float64", 1.0)) == NumpyScalar("float64", 1.0)


def _archive(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _tree(text: str) -> bytes:
    return _npy(np.frombuffer(text.encode(), dtype=np.uint8))


GOOD_TREE = '{"format": "cnn-course-channel-1", "tree": {"t": "array", "i": 0}}'


@pytest.mark.parametrize(
    "data,words",
    [
        (b"not a zip", "not an archive"),
        (_archive({"tree.npy": _tree(GOOD_TREE), "a0.npy": _npy(np.array([object()]))}), "pickle"),
        (_archive({"tree.npy": _tree(GOOD_TREE), "evil.npy": _npy(np.zeros(2))}), "member names"),
        (_archive({"tree.npy": _tree("{nope"), "a0.npy": _npy(np.zeros(2))}), "not JSON"),
        (_archive({"tree.npy": _tree(GOOD_TREE.replace("channel-1", "x"))}), "format"),
        (
            _archive(
                {
                    "tree.npy": _tree(GOOD_TREE),
                    "a0.npy": _npy(np.zeros(2)),
                    "a1.npy": _npy(np.zeros(2)),
                }
            ),
            "unreferenced",
        ),
        (
            _archive(
                {
                    "tree.npy": _tree(
                        '{"format": "cnn-course-channel-1", "tree": {"t": "list", "v": '
                        '[{"t": "array", "i": 0}, {"t": "array", "i": 0}]}}'
                    ),
                    "a0.npy": _npy(np.zeros(2)),
                }
            ),
            "used twice",
        ),
    ],
)
def test_unpack_refuses_anything_but_plain_data(data, words):
    with pytest.raises(ChannelError, match=words):
        channel.unpack(data)


def test_unpack_refuses_oversized_data():
    big = channel.pack(np.zeros(10_000))
    with pytest.raises(ChannelError, match="limit"):
        channel.unpack(big, max_bytes=10_000)


def test_read_regular_file_never_follows_links(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"secret")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(OSError):
        read_regular_file(tmp_path / "link", 100)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(IsADirectoryError):
        read_regular_file(tmp_path / "fifo", 100)
    with pytest.raises(OverflowError):
        read_regular_file(target, 3)
    assert read_regular_file(target, 100) == b"secret"


# --------------------------------------------------------------------- KernelCalls


def _zero_pad(X, pad):
    return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)))


class FakeKernel:
    """Runs the grader's request code in this process, in a namespace, as a kernel would;
    ``tamper`` may change the result folder afterwards (as a hostile kernel could)."""

    def __init__(self, namespace, tamper=None, delay=0.0):
        self.namespace = namespace
        self.tamper = tamper
        self.delay = delay

    def __call__(self, code, timeout):
        if self.delay > timeout:
            return None
        glb = dict(self.namespace)
        exec(compile(code, "<request>", "exec"), glb)  # noqa: S102 - our own request code
        folder = code.split("request.npz")[0].split("'")[-1]
        if self.tamper:
            self.tamper(folder)
        return {"content": {"status": "ok"}}


def _calls(tmp_path, kernel, deadline=None):
    deadline = deadline or time.monotonic() + 60
    return KernelCalls(kernel, ChannelFolder(tmp_path), deadline, max_bytes=2**20)


def _cases(n=2):
    return [make_case(dict(m=1, n_H=2, n_W=3, n_C=1, pad=1), i) for i in range(n)]


def test_calls_come_back_as_outcomes(tmp_path):
    outcomes = _calls(tmp_path, FakeKernel({"zero_pad": _zero_pad})).run(
        get_spec("zero_pad"), _cases()
    )
    assert [o["status"] for o in outcomes] == ["returned", "returned"]
    assert outcomes[0]["value"].shape == (1, 4, 5, 1)
    # the request and result files are the grader's: gone before the student's next cell,
    # so they never count against the student's disk limit
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "tamper,problem",
    [
        (lambda folder: os.remove(f"{folder}result.npz"), "ResultMissing"),
        (lambda folder: open(f"{folder}extra.npz", "wb").close(), "ResultDuplicated"),
        (lambda folder: open(f"{folder}result.npz", "wb").write(b"garbage"), "ResultMalformed"),
        (lambda folder: open(f"{folder}result.npz", "wb").write(b"0" * 2**21), "ResultTooLarge"),
        (
            lambda folder: open(f"{folder}result.npz", "wb").write(
                channel.pack({"calls": [{"id": 0, "status": "returned"}] * 2})
            ),
            "ResultDuplicated",
        ),
        (
            lambda folder: (
                os.remove(f"{folder}result.npz"),
                os.symlink("/etc/passwd", f"{folder}result.npz"),
            ),
            "ResultMalformed",
        ),
    ],
)
def test_a_tampered_result_is_a_named_failure(tmp_path, tamper, problem):
    kernel = FakeKernel({"zero_pad": _zero_pad}, tamper=tamper)
    outcomes = _calls(tmp_path, kernel).run(get_spec("zero_pad"), _cases())
    assert {o["status"] for o in outcomes} == {"channel"}
    assert {o["problem"] for o in outcomes} == {problem}
    assert list(tmp_path.iterdir()) == []


def test_forged_fields_are_cleaned(tmp_path):
    def forge(folder):
        with open(f"{folder}result.npz", "wb") as fh:
            fh.write(
                channel.pack(
                    {
                        "calls": [
                            {
                                "id": 0,
                                "status": "raised",
                                "error": {"type": 5, "message": ["x"]},
                                "forbidden": "torch",
                            },
                            {"id": 1, "status": "returned", "value": 1, "forbidden": [1, "torch"]},
                        ]
                    }
                )
            )

    kernel = FakeKernel(
        {"zero_pad": _zero_pad}, tamper=lambda f: (os.remove(f"{f}result.npz"), forge(f))
    )
    first, second = _calls(tmp_path, kernel).run(get_spec("zero_pad"), _cases())
    assert first["error"] == {"type": "", "message": "", "where": ""}
    assert first["forbidden"] == [] and second["forbidden"] == ["", "torch"]


def test_no_answer_in_time_is_a_timeout(tmp_path):
    kernel = FakeKernel({"zero_pad": _zero_pad}, delay=10)
    with pytest.raises(ProbeTimeout):
        _calls(tmp_path, kernel, deadline=time.monotonic() + 1).run(get_spec("zero_pad"), _cases())


def test_the_kernel_cannot_steer_the_graders_writes(tmp_path):
    """A kernel that moves the request folder away and leaves a link to a folder of the host
    in its place: the grader, which reads and cleans up only through its own descriptors,
    neither writes nor reads there, and says the result is missing."""
    trap = tmp_path / "host-folder"
    trap.mkdir()
    (trap / "keep.txt").write_text("the grader must not touch this folder")
    channel_folder = tmp_path / "channel"
    channel_folder.mkdir()

    def steer(folder):
        folder = folder.rstrip("/")
        os.remove(f"{folder}/result.npz")  # the result goes through the link instead
        os.rename(folder, folder + ".moved")
        os.symlink(trap, folder)
        (trap / "result.npz").write_bytes(channel.pack({"calls": []}))

    kernel = FakeKernel({"zero_pad": _zero_pad}, tamper=steer)
    outcomes = KernelCalls(kernel, ChannelFolder(channel_folder), time.monotonic() + 60).run(
        get_spec("zero_pad"), _cases()
    )
    assert {o["problem"] for o in outcomes} == {"ResultMissing"}
    assert sorted(p.name for p in trap.iterdir()) == ["keep.txt", "result.npz"]
    assert (trap / "keep.txt").read_text() == "the grader must not touch this folder"
    # the grader removed its own request folder's link, not what it pointed at
    assert all(not p.is_symlink() for p in channel_folder.iterdir())


def test_policy_is_watched_while_the_function_runs():
    def sneaky(X, pad):
        from numpy.lib.stride_tricks import sliding_window_view

        sliding_window_view(X, (1, 1), axis=(1, 2))
        return _zero_pad(X, pad)

    outcome = calls.call(sneaky, (np.zeros((1, 2, 2, 1)), 1), {}, ("stride_tricks",))
    assert outcome["status"] == "returned"
    assert outcome["forbidden"][0] == "numpy's sliding_window_view"
    clean = calls.call(_zero_pad, (np.zeros((1, 2, 2, 1)), 1), {}, ("stride_tricks", "torch"))
    assert clean["forbidden"] == []
