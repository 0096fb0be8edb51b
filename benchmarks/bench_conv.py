"""Convolution speed: numpy loops vs vectorised numpy (im2col) vs PyTorch, forward and backward.

    python benchmarks/bench_conv.py [--threads N] [--repeats R] [--markdown FILE]

(``make bench-conv`` runs it with the defaults.) Everyone gets the same number of threads
(default 1). The numpy implementations are the reference solutions of assignment 2, taken from
the solution cells of ``solutions/02_conv_backward/*.ipynb``: the loop ``conv_forward`` (a
given, read-only cell of assignment 2) and the loop ``conv_backward``, and ``conv_forward_fast`` /
``conv_backward_fast`` (im2col + one matrix product, col2im). The loops are far too slow for a
whole batch: they run once on a few images and the time is scaled to the batch size.
Everything else is the median of ``--repeats`` calls.

FLOPs: ``2 * m * n_H * n_W * n_C * f * f * n_C_prev`` for the forward pass and twice that for
the backward pass (dA_prev and dW each cost one forward's worth).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions" / "02_conv_backward"
sys.path.insert(0, str(ROOT))

# (name, batch, n_H_prev, n_W_prev, n_C_prev, n_C, f, stride, pad)
SHAPES = [
    ("MNIST conv1: 64x28x28x1 -> 32 3x3", 64, 28, 28, 1, 32, 3, 1, 0),
    ("conv2: 64x14x14x32 -> 64 3x3 pad 1", 64, 14, 14, 32, 64, 3, 1, 1),
]
LOOP_IMAGES = 1  # images the loop versions run on (then scaled to the batch)


def load_solution_functions() -> dict:
    """Execute the solution cells of assignment 2's source notebooks; return their namespace."""
    from autograder.fixtures import given_namespace, run_solution_cells

    namespace = given_namespace("02_conv_backward", "02_conv_backward.ipynb")

    for name in ("02_conv_backward.ipynb", "02_efficient_conv.ipynb"):
        run_solution_cells("02_conv_backward", name, namespace)
    return namespace


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: first-call allocations, lazy initialisation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def bench_shape(spec, ns, torch, repeats: int) -> list[dict]:
    import numpy as np

    name, m, n_H_prev, n_W_prev, n_C_prev, n_C, f, stride, pad = spec
    n_H = (n_H_prev + 2 * pad - f) // stride + 1
    n_W = (n_W_prev + 2 * pad - f) // stride + 1
    flops_fwd = 2 * m * n_H * n_W * n_C * f * f * n_C_prev
    flops_bwd = 2 * flops_fwd
    hp = {"stride": stride, "pad": pad}
    rng = np.random.default_rng(0)
    A = rng.standard_normal((m, n_H_prev, n_W_prev, n_C_prev))
    W = rng.standard_normal((f, f, n_C_prev, n_C)) * 0.1
    b = rng.standard_normal((1, 1, 1, n_C))
    dZ = rng.standard_normal((m, n_H, n_W, n_C))

    rows = []

    def add(impl, dtype, fwd, bwd, note=""):
        rows.append(
            {
                "shape": name,
                "impl": impl,
                "dtype": dtype,
                "fwd": fwd,
                "bwd": bwd,
                "note": note,
                "gflops_fwd": flops_fwd / fwd / 1e9,
                "gflops_bwd": flops_bwd / bwd / 1e9,
            }
        )

    # Loops: one run on LOOP_IMAGES images, scaled to the batch.
    k = LOOP_IMAGES
    start = time.perf_counter()
    _, cache_small = ns["conv_forward"](A[:k], W, b, hp)
    fwd = (time.perf_counter() - start) * m / k
    start = time.perf_counter()
    ns["conv_backward"](dZ[:k], cache_small)
    bwd = (time.perf_counter() - start) * m / k
    add("numpy loops", "float64", fwd, bwd, f"1 run on {k} image(s), x{m // k}")

    for dtype in (np.float64, np.float32):
        A_d, W_d, b_d, dZ_d = (x.astype(dtype) for x in (A, W, b, dZ))
        _, cache = ns["conv_forward_fast"](A_d, W_d, b_d, hp)
        fwd = median_seconds(
            lambda A_d=A_d, W_d=W_d, b_d=b_d: ns["conv_forward_fast"](A_d, W_d, b_d, hp), repeats
        )
        bwd = median_seconds(
            lambda dZ_d=dZ_d, cache=cache: ns["conv_backward_fast"](dZ_d, cache), repeats
        )
        add("numpy im2col", np.dtype(dtype).name, fwd, bwd)

    for tdtype in (torch.float64, torch.float32):
        x = torch.from_numpy(np.ascontiguousarray(A.transpose(0, 3, 1, 2))).to(tdtype)
        w = torch.from_numpy(np.ascontiguousarray(W.transpose(3, 2, 0, 1))).to(tdtype)
        bias = torch.from_numpy(b.reshape(-1).copy()).to(tdtype)
        g = torch.from_numpy(np.ascontiguousarray(dZ.transpose(0, 3, 1, 2))).to(tdtype)
        with torch.no_grad():
            fwd = median_seconds(
                lambda x=x, w=w, bias=bias: torch.nn.functional.conv2d(
                    x, w, bias, stride=stride, padding=pad
                ),
                repeats,
            )
        x.requires_grad_(True)
        w.requires_grad_(True)
        bias.requires_grad_(True)
        z = torch.nn.functional.conv2d(x, w, bias, stride=stride, padding=pad)
        bwd = median_seconds(
            lambda z=z, x=x, w=w, bias=bias, g=g: torch.autograd.grad(
                z, (x, w, bias), g, retain_graph=True
            ),
            repeats,
        )
        add("torch conv2d", str(tdtype).replace("torch.", ""), fwd, bwd)
    return rows


def format_table(rows: list[dict]) -> str:
    torch_time = {(r["shape"], r["dtype"]): r for r in rows if r["impl"] == "torch conv2d"}
    vec_time = {(r["shape"], r["dtype"]): r for r in rows if r["impl"] == "numpy im2col"}
    header = (
        "| shape | implementation | dtype | forward ms | fwd GFLOP/s | fwd / torch | "
        "backward ms | bwd GFLOP/s | bwd / torch | loop / im2col (fwd, bwd) |"
    )
    lines = [header, "|" + "---|" * 10]
    for r in rows:
        ref = torch_time.get((r["shape"], r["dtype"]))
        ratio_f = f"{r['fwd'] / ref['fwd']:.2f}x" if ref else ""
        ratio_b = f"{r['bwd'] / ref['bwd']:.2f}x" if ref else ""
        speedup = ""
        if r["impl"] == "numpy loops":
            vec = vec_time[(r["shape"], "float64")]
            speedup = f"{r['fwd'] / vec['fwd']:,.0f}x, {r['bwd'] / vec['bwd']:,.0f}x"
        impl = r["impl"] + (f" ({r['note']})" if r["note"] else "")
        lines.append(
            f"| {r['shape']} | {impl} | {r['dtype']} | {r['fwd'] * 1e3:,.2f} | "
            f"{r['gflops_fwd']:.2f} | {ratio_f} | {r['bwd'] * 1e3:,.2f} | {r['gflops_bwd']:.2f} | "
            f"{ratio_b} | {speedup} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=1, help="threads for numpy and torch")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per measurement")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()

    # Threads are pinned before numpy's BLAS and torch start their thread pools.
    from cnncourse.runtime import pin_threads

    pin_threads(args.threads)
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    ns = load_solution_functions()

    rows = []
    for spec in SHAPES:
        rows.extend(bench_shape(spec, ns, torch, args.repeats))
    table = format_table(rows)
    info = (
        f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs visible), threads: {args.threads}, "
        f"numpy {np.__version__}, torch {torch.__version__}, median of {args.repeats} calls"
    )
    print(info)
    print(table)
    if args.markdown:
        args.markdown.write_text(info + "\n\n" + table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
