"""Cost of LRP (and the other attribution methods) per volume, as a multiple of one forward pass.

Usage: .venv/bin/python benchmarks/lrp_cost.py [--device auto|cpu|cuda] [--shape 96 114 96]
       [--batch 8] [--repeats 5] [--methods lrp_alphabeta lrp_epsilon gradient_x_input guided_backprop]

Builds the Boehle 3D CNN for ``--shape`` (seeded weights, eval mode) and a batch of random volumes.
The baseline, measured in the same run, is the model's plain forward pass on that batch
(``torch.no_grad``). Each method is timed through :func:`mrixai.explain.attribution.attribute`,
exactly as the ``attribute_model`` rule calls it: BatchNorm folding, the zennit composite and the
backward pass included. Timings are medians of ``--repeats`` runs after one warm-up, alternating
methods and baseline so that drifting load hits all of them; CUDA timings synchronise first.
Prints one line per method: seconds per volume and the ratio to the forward pass. The acceptance
bar is LRP <= 3x one forward pass per volume on a CUDA GPU; exit status 1 when LRP
(``lrp_alphabeta``, beta 0) exceeds ``--max-ratio`` on CUDA.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mrixai.explain.attribution import attribute  # noqa: E402
from mrixai.learn.data import pick_device  # noqa: E402
from mrixai.learn.networks import build_model  # noqa: E402

OPTIONS = {"lrp_alphabeta": {"beta": 0.0}, "lrp_epsilon": {"epsilon": 1e-6}}


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(device: torch.device, shape: tuple[int, int, int], batch: int, repeats: int, methods: list[str]) -> dict:
    torch.manual_seed(0)
    model = build_model("boehle3d", shape).to(device).eval()
    x = torch.randn(batch, 1, *shape, device=device)
    targets = torch.ones(batch, dtype=torch.long, device=device)

    def forward():
        with torch.no_grad():
            model(x)

    jobs = {"forward": forward}
    for method in methods:
        opts = OPTIONS.get(method, {})
        jobs[method] = lambda m=method, o=opts: attribute(model, x, m, targets, **o)
    for fn in jobs.values():  # warm-up (cuDNN autotuning, allocator)
        timed(fn, device)
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, fn in jobs.items():
            times[name].append(timed(fn, device))
    return {name: statistics.median(t) / batch for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--shape", type=int, nargs=3, default=[96, 114, 96])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--methods", nargs="+", default=["lrp_alphabeta", "lrp_epsilon", "gradient_x_input",
                                                         "guided_backprop"])
    parser.add_argument("--max-ratio", type=float, default=3.0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; Boehle 3D CNN at {tuple(args.shape)}, batch {args.batch}, median of {args.repeats}")
    per_volume = measure(device, tuple(args.shape), args.batch, args.repeats, args.methods)
    base = per_volume["forward"]
    print(f"{'forward (baseline)':24s} {base * 1000:9.2f} ms/volume   1.00x")
    for method in args.methods:
        print(f"{method:24s} {per_volume[method] * 1000:9.2f} ms/volume   {per_volume[method] / base:5.2f}x forward")
    ratio = per_volume.get("lrp_alphabeta", float("nan")) / base
    if device.type == "cuda" and ratio > args.max_ratio:
        print(f"LRP costs {ratio:.2f}x a forward pass on CUDA: above the {args.max_ratio}x bar")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
