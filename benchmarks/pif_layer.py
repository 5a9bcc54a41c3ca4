"""Speed of the grouped patch-individual-filter (PIF) layer against the per-patch loop reference.

Usage: .venv/bin/python benchmarks/pif_layer.py [--device auto|cpu|cuda] [--repeats 10] [--batch 4]

Builds ``boehle3d_pif`` for a 96x114x96 input, takes the shape its PIF layer sees (the input of
the last block: 32 channels of 8x9x8 with the default pools), and times one forward + backward
pass (input and weight gradients, gradients reset to None before each pass as an optimiser's
``zero_grad`` does) of :class:`~mrixai.learn.networks.PatchIndividualConv3d` (one grouped
convolution per strain) and of :class:`~mrixai.learn.networks.PatchIndividualConv3dLoop` (one
``F.conv3d`` per patch) with the same weights. Runs of the two alternate so drifting machine
load hits both; the medians give the speed-up, measured in this run. The outputs and gradients
of the two are compared first (largest absolute differences printed). Exit status 1 when they
differ by more than ``--tolerance``.

``compare_pif(device, repeats)`` returns the numbers as a dict, for other benchmarks to import
(this file can be loaded with importlib).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mrixai.learn.data import pick_device  # noqa: E402
from mrixai.learn.networks import (  # noqa: E402
    PatchIndividualConv3d,
    PatchIndividualConv3dLoop,
    build_model,
    copy_weights,
)

TARGET_SPEEDUP = 10.0


def model_pif_layer(
    input_shape: tuple[int, ...] = (96, 114, 96), patch_size: int = 2, overlap: bool = True, seed: int = 0
) -> PatchIndividualConv3d:
    """The PIF layer of ``boehle3d_pif`` built for ``input_shape`` (seeded weights)."""
    torch.manual_seed(seed)
    model = build_model("boehle3d_pif", tuple(input_shape), patch_size=patch_size, overlap=overlap)
    return model.last_conv


def _sync(device: torch.device) -> None:
    """Wait for queued GPU work so wall-clock times are complete."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step(layer: torch.nn.Module, x: torch.Tensor, upstream: torch.Tensor) -> torch.Tensor:
    """Forward + backward with fresh gradients; returns the output (detached)."""
    layer.zero_grad(set_to_none=True)
    x.grad = None
    out = layer(x)
    (out * upstream).sum().backward()
    return out.detach()


def _max_diffs(grouped: torch.nn.Module, loop: torch.nn.Module, x: torch.Tensor, upstream: torch.Tensor) -> dict:
    """Largest absolute differences of output, input gradient and weight gradients."""
    out_g = _step(grouped, x, upstream)
    grad_g = x.grad.clone()
    params_g = {k: p.grad.clone() for k, p in grouped.named_parameters()}
    out_l = _step(loop, x, upstream)
    grad_l = x.grad.clone()
    params_l = dict(loop.named_parameters())
    return {
        "max_abs_diff": (out_g - out_l).abs().max().item(),
        "max_abs_output": out_g.abs().max().item(),
        "max_abs_diff_grad_input": (grad_g - grad_l).abs().max().item(),
        "max_abs_diff_grad_weight": max((params_g[k] - params_l[k].grad).abs().max().item() for k in params_g),
    }


def compare_pif(
    device: str = "auto",
    repeats: int = 10,
    batch: int = 4,
    input_shape: tuple[int, ...] = (96, 114, 96),
    patch_size: int = 2,
    overlap: bool = True,
    warmup: int = 2,
    seed: int = 0,
) -> dict:
    """Time grouped vs loop PIF layers at the feature map ``boehle3d_pif`` gives ``input_shape``.

    Returns device, batch, feature_map ``(C, D, H, W)``, patches per strain, parameter count,
    the max absolute differences (output, input and weight gradients), the per-repeat times and
    medians of both implementations (seconds) and ``speedup`` = loop median / grouped median.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
    dev = pick_device(device)
    grouped = model_pif_layer(input_shape, patch_size, overlap, seed)
    loop = PatchIndividualConv3dLoop(
        grouped.in_channels, grouped.out_channels, grouped.input_shape, patch_size=patch_size, overlap=overlap
    )
    copy_weights(grouped, loop)
    grouped.to(dev)
    loop.to(dev)
    generator = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch, grouped.in_channels, *grouped.input_shape, generator=generator).to(dev)
    x.requires_grad_(True)
    upstream = torch.randn(batch, grouped.n_output_channels, *grouped.input_shape, generator=generator).to(dev)

    result = {
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "batch": batch,
        "input_shape": tuple(input_shape),
        "feature_map": (grouped.in_channels, *grouped.input_shape),
        "out_channels": grouped.n_output_channels,
        "patch_size": patch_size,
        "patches": {s: grouped.grid(s) for s in grouped.strains},
        "n_parameters": sum(p.numel() for p in grouped.parameters()),
        "repeats": repeats,
    }
    result.update(_max_diffs(grouped, loop, x, upstream))

    times: dict[str, list[float]] = {"grouped": [], "loop": []}
    layers = {"grouped": grouped, "loop": loop}
    for run in range(warmup + repeats):
        for name, layer in layers.items():
            _sync(dev)
            start = time.perf_counter()
            _step(layer, x, upstream)
            _sync(dev)
            if run >= warmup:
                times[name].append(time.perf_counter() - start)
    result["grouped_s"] = times["grouped"]
    result["loop_s"] = times["loop"]
    result["grouped_median_s"] = statistics.median(times["grouped"])
    result["loop_median_s"] = statistics.median(times["loop"])
    result["speedup"] = result["loop_median_s"] / result["grouped_median_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--repeats", type=int, default=10, help="timed passes of each implementation")
    parser.add_argument("--batch", type=int, default=4, help="batch size of the feature maps")
    parser.add_argument("--input-shape", type=int, nargs=3, default=(96, 114, 96), metavar=("X", "Y", "Z"))
    parser.add_argument("--patch-size", type=int, default=2)
    parser.add_argument("--no-overlap", action="store_true", help="main strain only")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed output difference")
    args = parser.parse_args()
    r = compare_pif(
        args.device, args.repeats, args.batch, tuple(args.input_shape), args.patch_size, not args.no_overlap
    )
    patches = ", ".join(f"{s} {'x'.join(map(str, g))}" for s, g in r["patches"].items())
    print(f"device {r['device_name']} ({r['threads']} threads), torch {r['torch']}")
    print(
        f"boehle3d_pif input {'x'.join(map(str, r['input_shape']))}: PIF layer sees "
        f"{r['feature_map'][0]} x {'x'.join(map(str, r['feature_map'][1:]))}, patch size {r['patch_size']} "
        f"(patches: {patches}), {r['out_channels']} output channels, {r['n_parameters']:,} parameters"
    )
    print(
        f"max |grouped - loop|: output {r['max_abs_diff']:.2e} (outputs up to {r['max_abs_output']:.2f}), "
        f"input grad {r['max_abs_diff_grad_input']:.2e}, weight grad {r['max_abs_diff_grad_weight']:.2e}"
    )
    print(
        f"forward+backward, batch {r['batch']}, median of {r['repeats']}: "
        f"grouped {r['grouped_median_s'] * 1e3:.1f} ms, loop {r['loop_median_s'] * 1e3:.1f} ms"
    )
    met = "met" if r["speedup"] >= TARGET_SPEEDUP else "NOT met"
    print(f"speed-up {r['speedup']:.1f}x (target >= {TARGET_SPEEDUP:g}x: {met})")
    if r["max_abs_diff"] > args.tolerance:
        print(f"outputs differ by more than {args.tolerance:g}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
