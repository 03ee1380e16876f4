"""Pool several runs of ``bench_smoothgrad.py`` (separate processes) into one estimate per model.

Within one process the interleaved rounds give a tight interval for each ratio, but a
ratio can shift from process to process by more than that interval (on the 2-core CPU:
ours/captum for EfficientNet-Lite0 was 0.976 [0.949, 0.996] in one run and 1.025
[1.001, 1.041] in the next, same code path for Captum). So a difference is only
resolved if it holds across processes. This script reads the JSON files of K runs and
prints, per model and ratio, each run's median of per-round ratios and the pooled
median with a two-level (cluster) bootstrap 95 % interval: resample the runs, then the
rounds within each resampled run (4000 resamples).

    for k in 1 2 3 4; do python benchmarks/bench_smoothgrad.py --threads 1 --rounds 10 \\
        --out benchmarks/results/run$k.json; done
    python benchmarks/pool_runs.py benchmarks/results/run*.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

RATIOS = (("ours", "floor"), ("captum", "floor"), ("ours", "captum"), ("ours_core", "floor"))


def load_runs(paths: list[Path]) -> dict[str, list[dict[str, list[float]]]]:
    """Per model, each run's per-round times by method."""
    runs: dict[str, list[dict[str, list[float]]]] = {}
    for path in paths:
        if not path.is_file():
            raise SystemExit(f"pool_runs: no such file: {path}")
        data = json.loads(path.read_text())
        if "rows" not in data:
            raise SystemExit(f"pool_runs: {path} is not a bench_smoothgrad.py result (no 'rows')")
        for row in data["rows"]:
            runs.setdefault(row["model"], []).append(row["times_s"])
    return runs


def pooled_ratio(runs: list[dict[str, list[float]]], num: str, den: str, seed: int = 0,
                 n_boot: int = 4000) -> dict[str, object] | None:
    """Per-run medians of the per-round ratio num/den, the pooled median and its cluster-bootstrap interval."""
    per_run = [np.asarray(t[num]) / np.asarray(t[den]) for t in runs if num in t and den in t]
    if not per_run:
        return None
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    for b in range(n_boot):
        picked = rng.integers(0, len(per_run), size=len(per_run))
        boots[b] = np.median(np.concatenate([rng.choice(per_run[k], size=per_run[k].size) for k in picked]))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"per_run": [float(np.median(r)) for r in per_run], "median": float(np.median(np.concatenate(per_run))),
            "ci95": [float(lo), float(hi)], "rounds": [int(r.size) for r in per_run]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="JSON files written by bench_smoothgrad.py")
    parser.add_argument("--out", type=Path, default=None, help="write the pooled numbers as JSON here")
    args = parser.parse_args()
    runs = load_runs(args.results)
    pooled: dict[str, dict[str, object]] = {}
    print("| model | ratio | per run (median of rounds) | pooled median [cluster-bootstrap 95 % CI] |")
    print("|---|---|---|---|")
    for model, model_runs in runs.items():
        pooled[model] = {}
        for num, den in RATIOS:
            res = pooled_ratio(model_runs, num, den)
            if res is None:
                continue
            pooled[model][f"{num}/{den}"] = res
            per_run = ", ".join(f"{v:.3f}" for v in res["per_run"])
            lo, hi = res["ci95"]
            print(f"| {model} | {num}/{den} | {per_run} | {res['median']:.3f} [{lo:.3f}, {hi:.3f}] |")
    if args.out is not None:
        args.out.write_text(json.dumps({"inputs": [str(p) for p in args.results], "pooled": pooled}, indent=1))


if __name__ == "__main__":
    main()
