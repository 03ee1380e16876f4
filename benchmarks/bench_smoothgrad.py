"""Benchmark interp_helpers.smoothgrad against Captum's NoiseTunnel and the forward+backward floor, in one process.

For each model (random weights: they do not change the cost), one 224 x 224 image, ``n`` noisy samples, batch B:

* ``floor``  -- the same n forward + backward passes at batch size B on pre-built noisy copies, parameters
  frozen, ``torch.autograd.grad`` with respect to the input, nothing else;
* ``ours``   -- ``interp_helpers.smoothgrad(model, x, 1, n_samples=n, batch_size=B)``;
* ``captum`` -- ``NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad", nt_samples=n,
  nt_samples_batch_size=B, stdevs=..., target=1, abs=False)``.

The methods are interleaved: each round times every method once (``torch.utils.benchmark``,
``blocked_autorange``), in an order rotated from round to round, so a drifting load hits all alike.
Per pair the report gives the median of the per-round ratios and a bootstrap 95 % interval of it.

    python benchmarks/bench_smoothgrad.py [--threads 1] [--rounds 10] [--quick]

Writes ``benchmarks/results/smoothgrad_cpu.json`` and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch
import torchvision
from captum.attr import NoiseTunnel, Saliency
from torch.utils import benchmark

import interp_helpers as ih

RESULTS = Path(__file__).resolve().parent / "results"


def build(name: str) -> torch.nn.Module:
    if name == "efficientnet_lite0":
        return ih.load_model(name, weights=None).module
    return getattr(torchvision.models, name)(weights=None).eval()


def methods(model: torch.nn.Module, x: torch.Tensor, n: int, batch: int) -> dict:
    sigma = 0.15 * float(x.max() - x.min())
    noisy = x + sigma * torch.randn((n, *x.shape[1:]))

    def floor() -> None:
        for p in model.parameters():
            p.requires_grad_(False)
        for s in range(0, n, batch):
            z = noisy[s:s + batch].clone().requires_grad_(True)
            torch.autograd.grad(model(z)[:, 1].sum(), z)
        for p in model.parameters():
            p.requires_grad_(True)

    def ours() -> None:
        ih.smoothgrad(model, x, 1, n_samples=n, batch_size=batch)

    def captum() -> None:
        NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad", nt_samples=n, nt_samples_batch_size=batch,
                                               stdevs=sigma, target=1, abs=False)

    return {"floor": floor, "ours": ours, "captum": captum}


def interleaved(fns: dict, rounds: int, threads: int, min_run_time: float) -> dict[str, list[float]]:
    for fn in fns.values():
        fn(), fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            timer = benchmark.Timer("fn()", globals={"fn": fns[name]}, num_threads=threads)
            times[name].append(timer.blocked_autorange(min_run_time=min_run_time).median)
    return times


def ratio(num: list[float], den: list[float], resamples: int = 4000) -> dict[str, float]:
    r = np.asarray(num) / np.asarray(den)
    rng = np.random.default_rng(0)
    boot = np.median(rng.choice(r, size=(resamples, len(r))), axis=1)
    return {"median": float(np.median(r)), "low": float(np.quantile(boot, 0.025)),
            "high": float(np.quantile(boot, 0.975))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="smoke run: small n, 2 rounds")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n, batch, rounds, min_time = (4, 2, 2, 0.05) if args.quick else (16, 8, args.rounds, 1.0)
    x = ih.load_model("efficientnet_lite0", weights=None).preprocess(ih.load_image("chelsea"))
    rows = []
    for name in ("resnet50", "efficientnet_lite0"):
        model = build(name)
        load = os.getloadavg()
        times = interleaved(methods(model, x, n, batch), rounds, args.threads, min_time)
        rows.append({"model": name, "n": n, "batch": batch, "load_before": load, "load_after": os.getloadavg(),
                     "ms": {k: 1e3 * float(np.median(v)) for k, v in times.items()}, "times": times,
                     "ours/floor": ratio(times["ours"], times["floor"]),
                     "captum/floor": ratio(times["captum"], times["floor"]),
                     "ours/captum": ratio(times["ours"], times["captum"])})
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "torch": torch.__version__, "threads": args.threads, "rounds": rounds}
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "smoothgrad_cpu.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    print("| model | n | B | floor ms | ours ms | captum ms | ours/floor | captum/floor | ours/captum |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        cells = [f"{row[k]['median']:.3f} [{row[k]['low']:.3f}, {row[k]['high']:.3f}]"
                 for k in ("ours/floor", "captum/floor", "ours/captum")]
        ms = row["ms"]
        print(f"| {row['model']} | {row['n']} | {row['batch']} | {ms['floor']:.0f} | {ms['ours']:.0f} | "
              f"{ms['captum']:.0f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
