"""Benchmark: interp_helpers.expected_gradients vs shap.GradientExplainer on ResNet50.

Same model (torchvision ResNet50, random weights -- timing does not depend on
them), same image, same background, same ``nsamples`` and batch size, one
explained class. Three places:

* the input (``layer=None`` vs ``GradientExplainer(model, background)``);
* ``layer2`` -- shap's ``(model, model.layer2)`` form attributes layer2's
  *input*, so ours runs with ``attribute_to="input"`` to explain the same
  tensor (and, for reference, ``attribute_to="output"``);
* the floor: one batched forward + backward pass of ``nsamples`` images to the
  input, the least any input-level estimator can do.

Also measured: the part of the network before layer2 (stem + layer1) on a
batch of ``batch_size`` images and on one image -- what the helper saves per
batch by calling the model on one dummy image and swapping in the
interpolated activations.

Methods are timed interleaved (A B C ... A B C ...) and medians reported, which
evens out the load of a shared machine. shap's time includes building the
explainer (it runs the background through the model, as our call does).

Usage: ``python benchmarks/bench_expected_gradients.py [--quick] [--device cpu|cuda]``;
``--render results/<file>.json`` re-renders the markdown table of a saved result.
Writes ``benchmarks/results/expected_gradients_<device>[_quick].json`` and ``.md``.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torchvision

from interp_helpers._common import frozen_model
from interp_helpers.methods import expected_gradients

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of one call (CPU time is less sensitive to other load)."""
    sync(device)
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples and repeats (smoke run)")
    parser.add_argument("--n-samples", type=int, default=None, help="draws per image (default 16, quick 8)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 3, quick 2)")
    parser.add_argument("--background", type=int, default=8, help="background images (default 8)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--render", metavar="JSON", help="only re-render the markdown table of a saved result")
    args = parser.parse_args()
    if args.render:
        path = Path(args.render)
        path.with_suffix(".md").write_text(render_table(json.loads(path.read_text())))
        print(path.with_suffix(".md").read_text())
        return

    n = args.n_samples or (8 if args.quick else 16)
    repeats = args.repeats or (2 if args.quick else 3)
    batch = n  # one batch of draws, for us and for shap
    device = torch.device(args.device)
    if device.type == "cuda":
        n = args.n_samples or (32 if args.quick else 128)
        batch = min(n, 64)

    import shap

    torch.manual_seed(0)  # the benchmark script owns its process; weights only, timing does not depend on them
    model = torchvision.models.resnet50(weights=None).eval().to(device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 224, 224, generator=g).to(device)
    background = torch.randn(args.background, 3, 224, 224, generator=g).to(device)
    with torch.no_grad():
        target = int(model(x).argmax())

    def floor() -> None:
        z = x.expand(n, -1, -1, -1).clone().requires_grad_(True)
        with frozen_model(model):
            torch.autograd.grad(model(z)[:, target].sum(), z)

    def ours_input() -> torch.Tensor:
        return expected_gradients(model, x, target, background=background, n_samples=n, batch_size=batch, seed=0)

    def ours_layer2_input() -> torch.Tensor:
        return expected_gradients(model, x, target, background=background, layer=model.layer2, attribute_to="input",
                                     n_samples=n, batch_size=batch, seed=0)

    def ours_layer2_output() -> torch.Tensor:
        return expected_gradients(model, x, target, background=background, layer=model.layer2, attribute_to="output",
                                     n_samples=n, batch_size=batch, seed=0)

    def shap_run(spec: object) -> np.ndarray:
        state = np.random.get_state()  # shap reseeds NumPy's global RNG
        try:
            explainer = shap.GradientExplainer(spec, background, batch_size=batch)
            values, _ = explainer.shap_values(x, nsamples=n, ranked_outputs=1, rseed=0)
        finally:
            np.random.set_state(state)
        return np.asarray(values)

    def shap_input() -> np.ndarray:
        return shap_run(model)

    def shap_layer2() -> np.ndarray:
        return shap_run((model, model.layer2))

    def shallow(k: int) -> Callable[[], None]:
        """stem + layer1 on k images: the part before layer2's input."""
        z = x.expand(k, -1, -1, -1).contiguous()

        def run() -> None:
            with torch.no_grad():
                h = model.maxpool(model.relu(model.bn1(model.conv1(z))))
                model.layer1(h)

        return run

    methods: dict[str, Callable[[], object]] = {
        "floor: forward+backward, input": floor,
        "ours: input": ours_input,
        "shap: input": shap_input,
        "ours: layer2 input": ours_layer2_input,
        "ours: layer2 output": ours_layer2_output,
        "shap: layer2 (its input)": shap_layer2,
        f"stem+layer1 forward, {batch} images": shallow(batch),
        "stem+layer1 forward, 1 image": shallow(1),
    }

    # Sanity: the same tensors are explained, and shap's model was left in eval mode like ours.
    assert shap_layer2().shape[1:4] == tuple(ours_layer2_input().shape[1:]), "layer2 shapes differ"
    assert shap_input().shape[1:4] == tuple(ours_input().shape[1:]), "input shapes differ"

    times: dict[str, list[float]] = {k: [] for k in methods}
    cpu_times: dict[str, list[float]] = {k: [] for k in methods}
    for r in range(repeats):
        for name, fn in methods.items():
            wall, cpu = timed(fn, device)
            times[name].append(wall)
            cpu_times[name].append(cpu)
        print(f"repeat {r + 1}/{repeats}: " + "; ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()),
              file=sys.stderr)

    med = {k: statistics.median(v) for k, v in times.items()}
    fl = med["floor: forward+backward, input"]
    pairs = {"input": ("shap: input", "ours: input"),
             "layer2": ("shap: layer2 (its input)", "ours: layer2 input")}
    speedup = {k: med[a] / med[b] for k, (a, b) in pairs.items()}
    # Ratio within each repeat (the two ran seconds apart): robust to load drifting between repeats.
    paired = {k: statistics.median(x / y for x, y in zip(times[a], times[b])) for k, (a, b) in pairs.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpu_times.items()}
    cpu_speedup = {k: cpu_med[a] / cpu_med[b] for k, (a, b) in pairs.items()}
    machine = cpu_name() if device.type == "cpu" else torch.cuda.get_device_name(device)
    result = {
        "benchmark": "expected_gradients",
        "device": str(device),
        "machine": machine,
        "torch_threads": torch.get_num_threads(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "torchvision": torchvision.__version__, "shap": shap.__version__},
        "model": "torchvision resnet50, weights=None",
        "image": "1 x 3 x 224 x 224",
        "background": args.background,
        "n_samples": n,
        "batch_size": batch,
        "repeats": repeats,
        "quick": args.quick,
        "seconds": times,
        "median_seconds": med,
        "x_floor": {k: v / fl for k, v in med.items()},
        "speedup_vs_shap": speedup,
        "speedup_vs_shap_paired_median": paired,
        "cpu_seconds": cpu_times,
        "median_cpu_seconds": cpu_med,
        "speedup_vs_shap_cpu_time": cpu_speedup,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"expected_gradients_{device.type}{'_quick' if args.quick else ''}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")

    table = render_table(result)
    stem.with_suffix(".md").write_text(table)
    print(table)


def render_table(result: dict) -> str:
    """The markdown table of one result (also: ``--render results/expected_gradients_<device>.json``)."""
    med, xf = result["median_seconds"], result["x_floor"]
    speedup, paired = result["speedup_vs_shap"], result["speedup_vs_shap_paired_median"]
    cpu = result.get("median_cpu_seconds")  # absent in results saved before CPU time was recorded
    lines = [
        (f"ResNet50 (random weights), 1 image 224x224, background {result['background']}, "
        f"nsamples {result['n_samples']}, batch {result['batch_size']}, median of {result['repeats']} interleaved "
        f"repeats; {result['machine']}, {result['torch_threads']} torch threads, torch {result['versions']['torch']}, "
        f"shap {result['versions']['shap']}."),
        "",
        "| method | median s | x floor |" + (" median CPU s |" if cpu else ""),
        "|---|---:|---:|" + ("---:|" if cpu else ""),
        *[f"| {k} | {v:.3g} | {xf[k]:.2f} |" + (f" {cpu[k]:.3g} |" if cpu else "") for k, v in med.items()],
        "",
        (f"Speed-up vs shap.GradientExplainer (ratio of medians / median of per-repeat ratios): "
        f"input {speedup['input']:.2f}x / {paired['input']:.2f}x, "
        f"layer2 {speedup['layer2']:.2f}x / {paired['layer2']:.2f}x."),
    ]
    if cpu:
        cs = result["speedup_vs_shap_cpu_time"]
        lines.append(f"In process CPU time: input {cs['input']:.2f}x, layer2 {cs['layer2']:.2f}x.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
