"""Training throughput of the Boehle 3D CNN, end to end against pure compute, and the PIF layer.

Usage: .venv/bin/python benchmarks/train_throughput.py [--device auto|cpu|cuda] [--shape 96 114 96]
       [--batch 8] [--volumes 64] [--epochs 2] [--threads N] [--repeats 3] [--skip-pif]

All rates are training volumes per second (forward + backward + Adam step), measured in this run:

- ``pure fp32``: the model on one random batch that already sits on the device, no data handling;
- ``pure fp32+CL``: the same with channels-last-3d memory, the layout training uses on CPU and CUDA;
- ``pure bf16+CL``: the same under bf16 autocast with channels-last-3d memory (CUDA only);
- ``end-to-end``: the pipeline's own training epoch (``mrixai.learn.train.train_epoch``) over an
  in-memory sample store of ``--volumes`` volumes: batching, index gathering, flip and
  translation augmentation, class-weighted loss, in the precision ``precision: auto`` picks.

It prints fp32+CL over fp32 (the layout's own speed-up), the end-to-end rate as a fraction of the
pure rate of the same precision and layout (acceptance on CUDA: >= 0.85) and bf16+CL over fp32
(acceptance on CUDA: >= 2x), then the PIF layer's grouped
implementation against the per-patch loop (benchmarks/pif_layer.py; acceptance >= 10x).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mrixai.learn.data import pick_device, to_device_if_fits  # noqa: E402
from mrixai.learn.networks import build_model  # noqa: E402
from mrixai.learn.train import TrainConfig, memory_format, seed_everything, train_epoch  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pure_rate(shape, batch: int, device: torch.device, bf16: bool, steps: int, warmup: int = 3,
              channels_last: bool | None = None) -> float:
    """Volumes/s of forward+backward+step on a fixed random batch already on ``device``
    (channels-last memory by default under bf16 on CUDA)."""
    if channels_last is None:
        channels_last = bf16 and device.type == "cuda"
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    model = build_model("boehle3d", tuple(shape)).to(device=device, memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 1, *shape, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 2, (batch,), device=device)
    model.train()
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return steps * batch / (time.perf_counter() - t0)


def end_to_end_rate(shape, batch: int, n_volumes: int, epochs: int, device: torch.device, precision: str,
                    threads: int) -> float:
    """Volumes/s of the pipeline's training epoch over an in-memory store of random volumes."""
    cfg = TrainConfig(model="boehle3d", batch_size=batch, device=str(device), precision=precision, threads=threads,
                      learning_rate=1e-4, weight_decay=0.0, max_epochs=epochs, min_epochs=1, patience=epochs,
                      flip_p=0.5, max_shift=2)
    gen = seed_everything(0, threads)
    rng = np.random.default_rng(0)
    store = rng.standard_normal((n_volumes, *shape), dtype=np.float32)
    labels = np.arange(n_volumes) % 2
    x_all = to_device_if_fits(store, device)
    y_all = torch.as_tensor(labels)
    bf16 = device.type == "cuda" and precision in ("auto", "bf16")
    model = build_model("boehle3d", tuple(shape)).to(device=device, memory_format=memory_format(3, device))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    weights = torch.ones(2, device=device)
    idx = np.arange(n_volumes)
    train_epoch(model, opt, x_all, y_all, idx[: batch * 2], cfg, gen, device, weights)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    seen = 0
    for _ in range(epochs):
        _, n = train_epoch(model, opt, x_all, y_all, idx, cfg, gen, device, weights)
        seen += n
    _sync(device)
    del bf16
    return seen / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--shape", type=int, nargs=3, default=[96, 114, 96])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--volumes", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=0, help="pure-compute steps (default: volumes*epochs/batch)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--repeats", type=int, default=3, help="alternating fp32 / fp32+CL measurements")
    ap.add_argument("--skip-pif", action="store_true")
    ap.add_argument("--pif-batch", type=int, default=1, help="batch of the PIF layer comparison")
    args = ap.parse_args(argv)
    device = pick_device(args.device)
    torch.set_num_threads(args.threads)
    steps = args.steps or max(4, args.volumes * args.epochs // args.batch)
    shape = tuple(args.shape)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{args.threads} CPU threads'}), "
          f"torch {torch.__version__}, Boehle CNN at {'x'.join(map(str, shape))}, batch {args.batch}")
    # the two layouts alternate, so that a change in the machine's load hits both alike
    pairs = [(pure_rate(shape, args.batch, device, False, steps),
              pure_rate(shape, args.batch, device, False, steps, channels_last=True)) for _ in range(args.repeats)]
    fp32 = float(np.median([a for a, _ in pairs]))
    fp32_cl = float(np.median([b for _, b in pairs]))
    ratio = float(np.median([b / a for a, b in pairs]))
    print(f"pure compute fp32        : {fp32:9.1f} volumes/s (median of {args.repeats})")
    rows = {"fp32": fp32, "fp32_cl": fp32_cl}
    print(f"pure compute fp32+CL     : {fp32_cl:9.1f} volumes/s   fp32+CL / fp32 = {ratio:.2f}x "
          f"(median of {args.repeats} alternating pairs; range {min(b / a for a, b in pairs):.2f}-"
          f"{max(b / a for a, b in pairs):.2f})")
    if device.type == "cuda":
        bf16 = pure_rate(shape, args.batch, device, True, steps)
        rows["bf16"] = bf16
        print(f"pure compute bf16+CL     : {bf16:9.1f} volumes/s   bf16+CL / fp32 = {bf16 / fp32:.2f}x (target >= 2)")
    precision = "auto"
    e2e = end_to_end_rate(shape, args.batch, args.volumes, args.epochs, device, precision, args.threads)
    ref = rows.get("bf16", fp32_cl if memory_format(3, device) != torch.contiguous_format else fp32)
    print(f"end-to-end ({'bf16+CL' if device.type == 'cuda' else 'fp32+CL'}, augment): {e2e:9.1f} volumes/s   "
          f"end-to-end / pure = {e2e / ref:.2f} (target >= 0.85 on CUDA)")
    if not args.skip_pif:
        spec = importlib.util.spec_from_file_location("pif_layer", ROOT / "benchmarks" / "pif_layer.py")
        pif = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(pif)
        res = pif.compare_pif(str(device.type), 5, batch=args.pif_batch)
        print(f"PIF layer fwd+bwd at feature map {res['feature_map']}, batch {res['batch']}: grouped "
              f"{1000 * res['grouped_median_s']:.1f} ms, per-patch loop {1000 * res['loop_median_s']:.1f} ms, speed-up "
              f"{res['speedup']:.1f}x (target >= 10), max |output difference| {res['max_abs_diff']:.2g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
