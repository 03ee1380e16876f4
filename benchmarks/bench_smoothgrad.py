"""Benchmark interp_helpers.smoothgrad against Captum's NoiseTunnel and the forward+backward floor.

For each model, one 224 x 224 image, ``n`` noisy samples, batch size ``B``:

* ``ours``   -- ``interp_helpers.smoothgrad(..., n_samples=n, batch_size=B, seed=0)``;
* ``captum`` -- ``NoiseTunnel(Saliency(model)).attribute(nt_samples=n, nt_samples_batch_size=B, abs=False)``;
* ``floor``  -- the same n forward + backward passes at batch size B on pre-built noisy
  copies, parameters frozen, ``torch.autograd.grad`` w.r.t. the input, nothing else;
* ``naive`` (``--naive``) -- the textbook loop: one noisy copy at a time,
  ``model(x)[0, t].backward()`` (parameter gradients computed too);
* ``ours_v0`` (``--legacy``) -- ours with the previous noise generator (one
  ``torch.Generator`` re-seeded per sample, one ``normal_`` launch per sample);
* ``ours_core`` (``--core``) -- ours without its argument checks and without
  ``frozen_model`` (parameters frozen by the same loop as the floor's): the noise
  loop alone, to separate its cost from the per-call bookkeeping.

Timing uses ``torch.utils.benchmark.Timer`` (``num_threads`` set, CUDA synchronised by its
timer) with ``blocked_autorange``. The methods are interleaved: each *round* measures every
method once, in an order rotated from round to round, so slow drifts of a shared machine hit
all methods alike. Each measurement is the median of its blocks; the report gives, over the
rounds, the median and the inter-quartile range (IQR) of each method, and the median of the
per-round ratios with a bootstrap 95 % confidence interval -- the interval says whether a 2 %
difference is resolved. ``noise/sample`` times the counter-based noise of one sample alone
(``interp_helpers._rng.normal_``), and ``overhead`` is ``smoothgrad`` on a trivial model per
sample (noise, sums, bookkeeping: all that ours adds to the floor) as a fraction of the floor.
The load average (``os.getloadavg``) is recorded before and after each model.

    python benchmarks/bench_smoothgrad.py --threads 1 --core --legacy   # CPU, ~3 minutes
    python benchmarks/bench_smoothgrad.py --device cuda --core --rss   # GPU (benchmarks/gpu_run.sh: 3 processes)
    python benchmarks/bench_smoothgrad.py --quick          # smoke run
    python benchmarks/bench_smoothgrad.py --threads 1 --overheads   # what each method adds, ~1 minute

Writes ``benchmarks/results/smoothgrad_<device>.json`` and prints markdown tables.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils import benchmark

RESULTS = Path(__file__).resolve().parent / "results"
METHOD_ORDER = ("floor", "ours", "captum", "ours_core", "ours_v0", "naive")


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


def _legacy_noise_into(buf: torch.Tensor, keys: torch.Tensor, scale: torch.Tensor) -> None:
    """The cost of the previous generator: per sample, a seed derived on the host (NumPy's
    SeedSequence), a torch.Generator re-seeded and one ``normal_`` launch. (Its noise is not
    the same as ours: only its cost matters here; the host never waits for ``keys``.)"""
    from interp_helpers import _rng

    gen = torch.Generator(device=buf.device)
    for k in range(buf.shape[0]):
        _LEGACY_COUNTER[0] += 1
        gen.manual_seed(_rng.derive_seed(0, _LEGACY_COUNTER[0]))
        buf[k].normal_(generator=gen)
    buf.view(buf.shape[0], -1).mul_(scale.view(-1, 1))


_LEGACY_COUNTER = [0]


def make_methods(model: torch.nn.Module, x: torch.Tensor, target: int, n: int, batch: int,
                 naive: bool, legacy: bool, core: bool = False) -> dict[str, Callable[[], object]]:
    from captum.attr import NoiseTunnel, Saliency

    import interp_helpers.attribution.noise as saliency
    from interp_helpers.attribution.core import Targets
    from interp_helpers.attribution.gradient import input_gradient
    from interp_helpers.attribution.noise import noise_sigma, smoothgrad

    sigma = float(noise_sigma(x, 0.15)[0])
    nt = NoiseTunnel(Saliency(model))

    def ours() -> torch.Tensor:
        return smoothgrad(model, x, target, n_samples=n, noise_level=0.15, batch_size=batch, seed=0)

    def ours_v0() -> torch.Tensor:
        current = saliency._noise_into
        saliency._noise_into = _legacy_noise_into
        try:
            return ours()
        finally:
            saliency._noise_into = current

    sigmas = noise_sigma(x, 0.15)
    tgts = torch.full((x.shape[0],), target, device=x.device)

    def ours_core() -> torch.Tensor:
        params = [(p, p.requires_grad) for p in model.parameters()]
        for p, _ in params:
            p.requires_grad_(False)
        try:
            sums = saliency._Sums(x.shape[0], "smoothgrad")
            saliency._rowwise_samples(input_gradient, model, x, Targets(tgts, None, x.shape[0], target), sums,
                                      range(n), sigma=sigmas, batch_size=batch, seed=0, antithetic=False)
            res = sums.result(x.dtype)
        finally:
            for p, rg in params:
                p.requires_grad_(rg)
        return res

    def captum() -> torch.Tensor:
        return nt.attribute(x, nt_type="smoothgrad", nt_samples=n, nt_samples_batch_size=batch,
                            stdevs=sigma, target=target, abs=False)

    gen = torch.Generator(device=x.device).manual_seed(0)

    def naive_loop() -> torch.Tensor:
        total = torch.zeros_like(x)
        for _ in range(n):
            noisy = (x + sigma * torch.randn(x.shape, generator=gen, device=x.device)).requires_grad_(True)
            model(noisy)[0, target].backward()
            total += noisy.grad
            model.zero_grad(set_to_none=True)
        return total / n

    # The floor's inputs are noisy copies like ours (built once, outside the timing): the
    # cost of a pass can depend on the data (identical rows ran a few % faster on a CPU).
    noisy_all = x + sigma * torch.randn((n, *x.shape[1:]), generator=torch.Generator().manual_seed(1)).to(x.device)
    chunks = [noisy_all[i:i + batch].clone() for i in range(0, n, batch)]
    targets = {c.shape[0]: torch.full((c.shape[0], 1), target, device=x.device) for c in chunks}

    def floor() -> torch.Tensor:
        params = [(p, p.requires_grad) for p in model.parameters()]
        for p, _ in params:
            p.requires_grad_(False)
        try:
            for xb in chunks:
                xb.requires_grad_(True)
                out = model(xb)
                (g,) = torch.autograd.grad(out.gather(1, targets[xb.shape[0]]).sum(), xb)
                xb.requires_grad_(False)
        finally:
            for p, rg in params:
                p.requires_grad_(rg)
        return g

    methods = {"floor": floor, "ours": ours, "captum": captum}
    if core:
        methods["ours_core"] = ours_core
    if legacy:
        methods["ours_v0"] = ours_v0
    if naive:
        methods["naive"] = naive_loop
    return methods


class _Trivial(torch.nn.Module):
    """Logits = a few input pixels: forward and backward cost next to nothing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0, 0, :8]


# --------------------------------------------------------------------------- timing


def timer(fn: Callable[[], object], name: str, threads: int) -> benchmark.Timer:
    return benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads, label="smoothgrad",
                           description=name)


def interleaved(methods: dict[str, Callable[[], object]], rounds: int, min_run_time: float,
                threads: int) -> dict[str, list[float]]:
    """Per-round medians (s) of each method; every round measures each method once, order rotated."""
    timers = {k: timer(f, k, threads) for k, f in methods.items()}
    for f in methods.values():  # warm-up: allocator pools, oneDNN primitives, cuDNN heuristics
        f()
        f()
    names = list(methods)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for k in order:
            times[k].append(timers[k].blocked_autorange(min_run_time=min_run_time).median)
    return times


def per_sample(fn: Callable[[], object], samples: int, threads: int, min_run_time: float) -> float:
    """Median seconds per sample of ``fn`` (which handles ``samples`` samples)."""
    fn()
    return timer(fn, "aux", threads).blocked_autorange(min_run_time=min_run_time).median / samples


def summary(values: list[float]) -> dict[str, float]:
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    return {"median": float(q50), "q25": float(q25), "q75": float(q75), "iqr": float(q75 - q25)}


def ratio_summary(num: list[float], den: list[float], seed: int = 0) -> dict[str, float]:
    """Median of per-round ratios, IQR, and a bootstrap 95 % interval for that median."""
    r = np.asarray(num) / np.asarray(den)
    rng = np.random.default_rng(seed)
    boots = np.median(rng.choice(r, size=(4000, r.size), replace=True), axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {**summary(r.tolist()), "ci95": [float(lo), float(hi)]}


# --------------------------------------------------------------------------- peak memory


def rss_child(model_name: str, n: int, batch: int, device_name: str) -> None:
    """Run one smoothgrad call in this (fresh) process and print its peak memory as JSON."""
    from interp_helpers.attribution.noise import smoothgrad

    device = torch.device(device_name)
    model = build_model(model_name, device)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
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


def loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "threads": torch.get_num_threads(), "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
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
    info["load_average_at_start"] = loadavg()
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def fmt_ratio(r: dict) -> str:
    lo, hi = r["ci95"]
    return f"{r['median']:.3f} [{lo:.3f}, {hi:.3f}]"


def markdown(rows: list[dict]) -> str:
    methods = [m for m in METHOD_ORDER if rows and m in rows[0]["methods"]]
    head = ["model", "n", "B"] + [f"{m} (s) median [IQR]" for m in methods] + [
        "ours/floor [95 % CI]", "captum/floor [95 % CI]", "ours/captum [95 % CI]"]
    extras = [e for e in ("ours_core", "ours_v0") if rows and e in rows[0]["methods"]]
    head += [f"{e}/floor [95 % CI]" for e in extras]
    head += ["noise/sample", "overhead", "frozen_model", "load (before, after)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], str(r["n"]), str(r["batch"])]
        for m in methods:
            s = r["methods"][m]
            cells.append(f"{s['median']:.4g} [{s['q25']:.4g}, {s['q75']:.4g}]")
        cells += [fmt_ratio(r["ratios"]["ours/floor"]), fmt_ratio(r["ratios"]["captum/floor"]),
                  fmt_ratio(r["ratios"]["ours/captum"])]
        cells += [fmt_ratio(r["ratios"][f"{e}/floor"]) for e in extras]
        cells += [f"{r['noise_per_sample_s'] * 1e6:.1f} µs", f"{100 * r['overhead_fraction_of_floor']:.1f} %",
                  f"{r['frozen_model_s'] * 1e3:.2f} ms = {100 * r['frozen_model_fraction_of_floor']:.1f} %",
                  f"{r['load_before'][0] if r['load_before'] else '?'}, {r['load_after'][0] if r['load_after'] else '?'}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def overheads(device: torch.device, threads: int, rounds: int, min_run_time: float, out: Path | None) -> None:
    """Per sample, interleaved: ours and Captum on a trivial model (all they add to the passes), the noise alone.

    The trivial model's forward and backward cost next to nothing, so what remains is each
    method's own work: noise, adding the image, sums, checks, ``frozen_model`` (ours);
    ``repeat``, ``torch.normal``, sums (Captum's ``NoiseTunnel``).
    """
    from captum.attr import NoiseTunnel, Saliency

    from interp_helpers import _rng
    from interp_helpers.attribution.noise import noise_sigma, smoothgrad

    n, batch = 64, 8
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
    trivial = _Trivial().to(device)
    sigma = float(noise_sigma(x, 0.15)[0])
    nt = NoiseTunnel(Saliency(trivial))
    keys = torch.tensor([_rng.stream_key(0, 0, j) for j in range(batch)], device=device)
    buf = torch.empty(batch, x[0].numel(), device=device)
    methods = {
        "ours": lambda: smoothgrad(trivial, x, 1, n_samples=n, noise_level=0.15, batch_size=batch, seed=0),
        "captum": lambda: nt.attribute(x, nt_type="smoothgrad", nt_samples=n, nt_samples_batch_size=batch,
                                       stdevs=sigma, target=1, abs=False),
        "counter noise": lambda: _rng.normal_(buf, keys),
        "torch.randn": lambda: torch.randn(buf.shape, device=device),
    }
    per = {"ours": n, "captum": n, "counter noise": batch, "torch.randn": batch}
    times = interleaved(methods, rounds, min_run_time, threads)
    rows = {k: summary([t / per[k] for t in v]) for k, v in times.items()}
    ratios = {"ours/captum": ratio_summary(times["ours"], times["captum"]),
              "counter noise/torch.randn": ratio_summary(times["counter noise"], times["torch.randn"])}
    print(f"per 224 x 224 sample, {rounds} interleaved rounds, {threads} thread(s), {device}:")
    for k, r in rows.items():
        print(f"  {k:14s} {r['median'] * 1e6:8.1f} µs [IQR {r['q25'] * 1e6:.1f}-{r['q75'] * 1e6:.1f}]")
    for k, r in ratios.items():
        print(f"  {k}: {fmt_ratio(r)}")
    path = out or RESULTS / f"smoothgrad_overheads_{device.type}.json"
    path.write_text(json.dumps({"device": str(device), "machine": machine(), "rounds": rounds,
                                "min_run_time": min_run_time, "threads": threads, "n": n, "batch": batch,
                                "times_s": times, "per_sample": rows, "ratios": ratios}, indent=2))
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="efficientnet_lite0 only, few rounds (smoke run)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 8 CPU, 15 GPU)")
    parser.add_argument("--min-run-time", type=float, default=None,
                        help="blocked_autorange min_run_time per measurement, s (default 0.2 CPU, 0.25 GPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--naive", action="store_true", help="also time the textbook loop")
    parser.add_argument("--legacy", action="store_true", help="also time ours with the previous noise generator")
    parser.add_argument("--core", action="store_true", help="also time ours without checks and frozen_model")
    parser.add_argument("--rss", action="store_true", help="peak memory of n = 200 vs n = 20 (subprocesses)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/...)")
    parser.add_argument("--overheads", action="store_true",
                        help="only what each method adds to the passes: both on a trivial model, and the noise alone")
    parser.add_argument("--rss-child", nargs=4, metavar=("MODEL", "N", "B", "DEVICE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.rss_child:
        name, n, b, dev = args.rss_child
        rss_child(name, int(n), int(b), dev)
        return

    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    gpu = device.type == "cuda"
    threads = torch.get_num_threads()
    rounds = args.rounds or (3 if args.quick else 15 if gpu else 6)
    if rounds < 3:
        parser.error(f"--rounds must be >= 3, got {rounds}")
    min_run_time = args.min_run_time or (0.25 if gpu else 0.2)
    if args.quick:
        plan = {"efficientnet_lite0": (8, 4)}
    elif gpu:
        plan = {"resnet50": (64, 32), "densenet121": (64, 32), "efficientnet_lite0": (64, 32)}
    else:  # sized so that the whole CPU run stays around 3 minutes at 1 thread (add densenet121 with --models)
        plan = {"efficientnet_lite0": (8, 8), "resnet50": (4, 4)}
    if args.models:
        plan = {m: plan.get(m, (8, 4)) for m in args.models}

    from interp_helpers import _rng
    from interp_helpers.attribution.noise import smoothgrad

    if args.overheads:
        overheads(device, threads, rounds, min_run_time, args.out)
        return

    info = machine()
    t_start = time.perf_counter()
    rows = []
    for name, (n, batch) in plan.items():
        load_before = loadavg()
        model = build_model(name, device)
        x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
        methods = make_methods(model, x, target=1, n=n, batch=batch, naive=args.naive, legacy=args.legacy,
                               core=args.core)
        times = interleaved(methods, rounds, min_run_time, threads)
        # what ours adds: the noise alone, and smoothgrad on a trivial model (noise + sums + bookkeeping)
        keys = torch.tensor([_rng.stream_key(0, 0, j) for j in range(batch)], device=device)
        buf = torch.empty(batch, x[0].numel(), device=device)
        noise = per_sample(lambda: _rng.normal_(buf, keys), batch, threads, min_run_time)
        trivial = _Trivial().to(device)
        m = max(n, 64)
        over = per_sample(lambda: smoothgrad(trivial, x, 1, n_samples=m, noise_level=0.15, batch_size=batch, seed=0),
                          m, threads, min_run_time)
        from interp_helpers.hooks import frozen_model

        def freeze() -> None:
            with frozen_model(model):
                pass

        freeze_s = per_sample(freeze, 1, threads, min_run_time)
        floor_med = statistics.median(times["floor"])
        ratios = {"ours/floor": ratio_summary(times["ours"], times["floor"]),
                  "captum/floor": ratio_summary(times["captum"], times["floor"]),
                  "ours/captum": ratio_summary(times["ours"], times["captum"])}
        for extra in ("ours_v0", "ours_core"):
            if extra in times:
                ratios[f"{extra}/floor"] = ratio_summary(times[extra], times["floor"])
        if "naive" in times:
            ratios["naive/ours"] = ratio_summary(times["naive"], times["ours"])
        rows.append({"model": name, "n": n, "batch": batch, "rounds": rounds, "times_s": times,
                     "methods": {k: summary(v) for k, v in times.items()}, "ratios": ratios,
                     "noise_per_sample_s": noise, "overhead_per_sample_s": over, "frozen_model_s": freeze_s,
                     "frozen_model_fraction_of_floor": freeze_s / floor_med,
                     "overhead_fraction_of_floor": over * n / floor_med,
                     "load_before": load_before, "load_after": loadavg()})
        print(f"[{time.perf_counter() - t_start:6.1f}s] {name}: "
              + ", ".join(f"{k} {statistics.median(v):.4f}s" for k, v in times.items())
              + f"; ours/floor {fmt_ratio(ratios['ours/floor'])}, captum/floor {fmt_ratio(ratios['captum/floor'])}"
              + f"; load {rows[-1]['load_after']}", flush=True)
        del model, methods

    rss = {}
    if args.rss:
        rss_ns, rss_batch = (20, 200), 16 if gpu else 8
        rss = {"model": "efficientnet_lite0", "batch": rss_batch,
               "runs": measure_rss("efficientnet_lite0", rss_ns, rss_batch, device, threads)}
    info["total_s"] = time.perf_counter() - t_start
    info["load_average_at_end"] = loadavg()
    result = {"device": str(device), "machine": info, "rounds": rounds, "min_run_time": min_run_time,
              "quick": args.quick, "rows": rows, "rss": rss}
    tag = "cuda" if gpu else "cpu"
    path = args.out or RESULTS / f"smoothgrad_{tag}{'_quick' if args.quick else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print()
    print(f"device: {device} ({info.get('gpu') or info.get('cpu', '?')}), torch {torch.__version__}, "
          f"{threads} thread(s), {rounds} interleaved rounds, blocked_autorange(min_run_time={min_run_time}), "
          f"total {info['total_s']:.0f} s, load average {info['load_average_at_start']} -> {info['load_average_at_end']}")
    print(markdown(rows))
    if rss:
        a, b = rss["runs"]
        print(f"\npeak RSS n={a['n']}: {a['peak_rss_mb']:.0f} MB, n={b['n']}: {b['peak_rss_mb']:.0f} MB, "
              f"ratio {b['peak_rss_mb'] / a['peak_rss_mb']:.3f}")
        if "peak_cuda_mb" in a:
            print(f"peak CUDA memory n={a['n']}: {a['peak_cuda_mb']:.0f} MB, n={b['n']}: {b['peak_cuda_mb']:.0f} MB, "
                  f"ratio {b['peak_cuda_mb'] / a['peak_cuda_mb']:.3f}")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
