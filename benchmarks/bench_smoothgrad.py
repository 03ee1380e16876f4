"""Benchmark interp_helpers.smoothgrad against Captum, a naive loop and the floor.

For each model, one image, ``n`` noisy samples, batch size ``B``:

* ``ours``     -- ``interp_helpers.smoothgrad(..., n_samples=n, batch_size=B)``;
* ``captum``   -- ``NoiseTunnel(Saliency(model)).attribute(nt_samples=n, nt_samples_batch_size=B, abs=False)``;
* ``naive``    -- the textbook loop: one noisy copy at a time, ``model(x)[0, t].backward()``
  (parameters keep ``requires_grad``, so their gradients are computed too), sum ``x.grad``;
* ``floor``    -- the same number of forward + backward passes at batch size ``B`` on
  pre-built noisy copies, parameters frozen, ``torch.autograd.grad`` w.r.t. the input, nothing else;
* ``ours_bs1`` (with ``--ablation``) -- ours with ``batch_size=1``: separates the gain of
  batching from the gain of not computing parameter gradients.

Methods are interleaved inside each repeat (order rotated), after one warm-up call
each; the table reports medians. Peak RSS of ``smoothgrad`` for n = 200 vs n = 20 is
measured in fresh subprocesses (``resource.getrusage``). Uses CUDA when available.

    python benchmarks/bench_smoothgrad.py            # ~2 minutes on a 2-core CPU
    python benchmarks/bench_smoothgrad.py --quick    # efficientnet_lite0 only, smaller n

Writes ``benchmarks/results/smoothgrad_<device>.json`` and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch

RESULTS = Path(__file__).resolve().parent / "results"


# --------------------------------------------------------------------------- models


def build_model(name: str, device: torch.device) -> torch.nn.Module:
    """Random-weight model for timing (weights do not change the cost)."""
    if name == "efficientnet_lite0":
        try:
            import interp_helpers as ih

            return ih.load_model(name, weights=None, device=device).module
        except (ImportError, AttributeError):
            import timm

            return timm.create_model("tf_efficientnet_lite0", pretrained=False).eval().to(device)
    import torchvision

    return getattr(torchvision.models, name)(weights=None).eval().to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- methods


def make_methods(model: torch.nn.Module, x: torch.Tensor, target: int, n: int, batch: int,
                 ablation: bool) -> dict[str, Callable[[], torch.Tensor]]:
    from captum.attr import NoiseTunnel, Saliency

    from interp_helpers.saliency import noise_sigma, smoothgrad

    sigma = float(noise_sigma(x, 0.15)[0])
    nt = NoiseTunnel(Saliency(model))

    def ours() -> torch.Tensor:
        return smoothgrad(model, x, target, n_samples=n, noise_level=0.15, batch_size=batch, seed=0)

    def ours_bs1() -> torch.Tensor:
        return smoothgrad(model, x, target, n_samples=n, noise_level=0.15, batch_size=1, seed=0)

    def captum() -> torch.Tensor:
        return nt.attribute(x, nt_type="smoothgrad", nt_samples=n, nt_samples_batch_size=batch,
                            stdevs=sigma, target=target, abs=False)

    gen = torch.Generator(device=x.device).manual_seed(0)

    def naive() -> torch.Tensor:
        total = torch.zeros_like(x)
        for _ in range(n):
            noisy = (x + sigma * torch.randn(x.shape, generator=gen, device=x.device)).requires_grad_(True)
            model(noisy)[0, target].backward()
            total += noisy.grad
            model.zero_grad(set_to_none=True)
        return total / n

    # The floor's inputs are noisy copies like ours (built once, outside the timing): the
    # cost of a pass can depend on the data (identical rows ran a few % faster here).
    noisy_all = x + sigma * torch.randn((n, *x.shape[1:]), generator=torch.Generator().manual_seed(1)).to(x.device)
    chunks = [noisy_all[i:i + batch].clone() for i in range(0, n, batch)]
    targets = {c.shape[0]: torch.full((c.shape[0],), target, device=x.device) for c in chunks}

    def floor() -> torch.Tensor:
        params = [(p, p.requires_grad) for p in model.parameters()]
        for p, _ in params:
            p.requires_grad_(False)
        try:
            for xb in chunks:
                xb.requires_grad_(True)
                out = model(xb)
                (g,) = torch.autograd.grad(out.gather(1, targets[xb.shape[0]].view(-1, 1)).sum(), xb)
                xb.requires_grad_(False)
        finally:
            for p, rg in params:
                p.requires_grad_(rg)
        return g

    methods = {"ours": ours, "captum": captum, "naive": naive, "floor": floor}
    if ablation:
        methods["ours_bs1"] = ours_bs1
    return methods


class _Trivial(torch.nn.Module):
    """Logits = a few input pixels: forward and backward cost next to nothing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0, 0, :8]


def overhead_per_sample(x: torch.Tensor, n: int, batch: int, repeats: int, device: torch.device) -> float:
    """Median seconds per sample of ``smoothgrad`` on a trivial model: noise, sums, bookkeeping.

    An upper bound on what ``ours`` adds to the floor (it includes the trivial model's
    own tiny forward/backward).
    """
    from interp_helpers.saliency import smoothgrad

    model = _Trivial().to(device)
    run = lambda: smoothgrad(model, x, 1, n_samples=n, noise_level=0.15, batch_size=batch, seed=0)  # noqa: E731
    run()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        run()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / n


def time_methods(methods: dict[str, Callable[[], torch.Tensor]], repeats: int,
                 device: torch.device) -> dict[str, list[float]]:
    names = list(methods)
    for name in names:  # warm-up: allocator pools, oneDNN primitives, cuDNN autotune
        methods[name]()
    sync(device)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            sync(device)
            t0 = time.perf_counter()
            methods[name]()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


# --------------------------------------------------------------------------- peak memory


def rss_child(model_name: str, n: int, batch: int, device_name: str) -> None:
    """Run one smoothgrad call in this (fresh) process and print its peak memory as JSON."""
    from interp_helpers.saliency import smoothgrad

    device = torch.device(device_name)
    model = build_model(model_name, device)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    # Reset the kernel's high-water mark so that start-up (imports, model construction)
    # does not hide the call's own peak; fall back to the process-lifetime peak.
    reset = _reset_peak_rss()
    before = _status_mb("VmRSS")
    smoothgrad(model, x, 1, n_samples=n, batch_size=batch, seed=0)
    peak = _status_mb("VmHWM") if reset else None
    out = {"n": n, "rss_before_mb": before,
           "peak_rss_mb": peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "peak_is_for_call_only": bool(reset)}
    if device.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    print(json.dumps(out))


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def measure_rss(model_name: str, ns: tuple[int, int], batch: int, device: torch.device,
                threads: int) -> list[dict]:
    rows = []
    for n in ns:
        cmd = [sys.executable, __file__, "--rss-child", model_name, str(n), str(batch), str(device),
               "--threads", str(threads)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    return rows


# --------------------------------------------------------------------------- main


def machine() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "threads": torch.get_num_threads()}
    try:
        import captum

        info["captum"] = captum.__version__
    except ImportError:
        pass
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                info["cpu"] = line.split(":", 1)[1].strip()
            if line.startswith("CPU(s):"):
                info["cpus"] = int(line.split(":", 1)[1])
    except OSError:
        pass
    try:
        info["load_average_at_start"] = list(__import__("os").getloadavg())
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def markdown(rows: list[dict], rss: dict) -> str:
    lines = ["| model | n | B | ours (s) | captum (s) | naive (s) | floor (s) | ours/floor | captum/ours | naive/ours "
             "| overhead bound |" + (" ours_bs1 (s) |" if rows and "ours_bs1" in rows[0]["median_s"] else ""),
             "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if rows and "ours_bs1" in rows[0]["median_s"] else "")]
    for r in rows:
        m = r["median_s"]
        line = (f"| {r['model']} | {r['n']} | {r['batch']} | {m['ours']:.3f} | {m['captum']:.3f} | {m['naive']:.3f} "
                f"| {m['floor']:.3f} | {m['ours'] / m['floor']:.3f} | {m['captum'] / m['ours']:.2f} "
                f"| {m['naive'] / m['ours']:.2f} | {100 * r['overhead_fraction_of_floor']:.1f} % |")
        if "ours_bs1" in m:
            line += f" {m['ours_bs1']:.3f} |"
        lines.append(line)
    if rss:
        a, b = rss["runs"]
        lines.append("")
        lines.append(f"Peak RSS during the call ({rss['model']}, B={rss['batch']}): n={a['n']}: {a['peak_rss_mb']:.0f} MB, "
                     f"n={b['n']}: {b['peak_rss_mb']:.0f} MB, ratio {b['peak_rss_mb'] / a['peak_rss_mb']:.3f} "
                     f"(RSS before the call {a['rss_before_mb']:.0f} MB)")
        if "peak_cuda_mb" in a:
            lines.append(f"Peak CUDA memory: n={a['n']}: {a['peak_cuda_mb']:.0f} MB, n={b['n']}: "
                         f"{b['peak_cuda_mb']:.0f} MB, ratio {b['peak_cuda_mb'] / a['peak_cuda_mb']:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="efficientnet_lite0 only, n=8, RSS n=10 vs 100")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--ablation", action="store_true", help="also time ours with batch_size=1")
    parser.add_argument("--no-rss", action="store_true")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: CUDA when available, else the CPU")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/...)")
    parser.add_argument("--rss-child", nargs=4, metavar=("MODEL", "N", "B", "DEVICE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.rss_child:
        name, n, b, dev = args.rss_child
        rss_child(name, int(n), int(b), dev)
        return
    if args.repeats < 3:
        parser.error(f"--repeats must be >= 3 (medians of at least 3), got {args.repeats}")

    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    gpu = device.type == "cuda"
    # (n, B) per model: sized so the whole run stays under ~2 minutes on a 2-core CPU
    if args.quick:
        plan = {"efficientnet_lite0": (8, 4)}
        rss_ns, rss_batch = (10, 100), 4
    elif gpu:
        plan = {"resnet50": (64, 32), "densenet121": (64, 32), "efficientnet_lite0": (64, 32)}
        rss_ns, rss_batch = (20, 200), 16  # B <= 20, so both runs use full batches
    else:
        plan = {"efficientnet_lite0": (16, 8), "resnet50": (8, 4), "densenet121": (8, 4)}
        rss_ns, rss_batch = (20, 200), 8
    if args.models:
        plan = {m: plan.get(m, (8, 4)) for m in args.models}

    info = machine()
    t_start = time.perf_counter()
    rows = []
    for name, (n, batch) in plan.items():
        model = build_model(name, device)
        x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
        methods = make_methods(model, x, target=1, n=n, batch=batch, ablation=args.ablation)
        times = time_methods(methods, args.repeats, device)
        over = overhead_per_sample(x, max(n, 64), batch, args.repeats, device)
        rows.append({"model": name, "n": n, "batch": batch, "times_s": times,
                     "median_s": {k: statistics.median(v) for k, v in times.items()},
                     "min_s": {k: min(v) for k, v in times.items()},
                     "overhead_per_sample_s": over,
                     "overhead_fraction_of_floor": over * n / statistics.median(times["floor"])})
        print(f"[{time.perf_counter() - t_start:6.1f}s] {name}: "
              + ", ".join(f"{k} {statistics.median(v):.3f}s" for k, v in times.items()), flush=True)
        del model, methods

    rss = {}
    if not args.no_rss:
        rss = {"model": "efficientnet_lite0", "batch": rss_batch,
               "runs": measure_rss("efficientnet_lite0", rss_ns, rss_batch, device, torch.get_num_threads())}
    info["total_s"] = time.perf_counter() - t_start
    result = {"device": str(device), "machine": info, "repeats": args.repeats, "quick": args.quick,
              "rows": rows, "rss": rss}
    tag = "cuda" if gpu else "cpu"
    path = args.out or RESULTS / f"smoothgrad_{tag}{'_quick' if args.quick else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print()
    print(f"device: {device} ({info.get('gpu') or info.get('cpu', '?')}), torch threads {info['threads']}, "
          f"median of {args.repeats} interleaved repeats, total {info['total_s']:.0f} s")
    print(markdown(rows, rss))
    print("\noverhead bound: smoothgrad's own per-sample work (noise, sums, bookkeeping), timed on a trivial model, "
          "as a fraction of the floor")
    print(f"\nwrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()
