"""Prove the image notebooks on the original architectures: ``make check-models``.

Executes notebooks 01, 02, 03 and 05 in quick mode (``INTERP_QUICK=1``) once per model
(``INTERP_MODEL=resnet50`` and ``INTERP_MODEL=densenet121`` by default) and reports, per notebook
and model, the wall time and the peak memory of the kernel.

Nobody here can download torchvision's weights, so each model runs on a *stand-in*: random weights
saved in the format torchvision publishes (DenseNet121 with the pre-0.3 key names
``denselayer1.norm.1.weight`` and the legacy serialisation; ResNet50 as a plain state dict) under
the published file name, in a temporary ``TORCH_HOME`` that is deleted afterwards -- the user's
cache is never touched. The numbers are therefore about the code paths, run time and memory, not
about what the pretrained models predict.

Peak memory is the kernel's high-water mark: for every process of the kernel's process tree, the
largest ``VmHWM`` (peak resident set size, from ``/proc/<pid>/status``) seen while polling every
0.1 s, summed over the processes (exact for a one-process kernel). A kernel that goes over
``--abort-gb`` is killed, so that the check cannot exhaust a shared machine.

Usage::

    .venv/bin/python tools/check_models.py [--models resnet50 densenet121] [--notebooks 01 02 03 05]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Self

import psutil
import torch
import torchvision

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from interp_helpers import models as M
from tools.tutorial import execute_notebook

DEFAULT_NOTEBOOKS = ("01", "02", "03", "05")
DEFAULT_MODELS = ("resnet50", "densenet121")
LIMIT_GB = 8.0
_MODERN_DENSE_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))([12])\.(weight|bias|running_mean|running_var)$")


# ----------------------------------------------------------------------------------- stand-ins


def legacy_densenet_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A modern DenseNet state dict renamed back to torchvision's published (pre-0.3) key names.

    ``...denselayer1.norm1.weight`` -> ``...denselayer1.norm.1.weight`` (likewise ``conv1``, ``norm2``,
    ``conv2``); the ``num_batches_tracked`` buffers, which the 2017 file predates, are dropped.
    """
    out = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        match = _MODERN_DENSE_KEY.match(key)
        out[f"{match.group(1)}.{match.group(2)}.{match.group(3)}" if match else key] = value
    return out


def random_state(name: str, seed: int) -> dict[str, torch.Tensor]:
    """A state dict of ``name`` in which every entry is drawn from ``seed`` (batch-norm statistics included).

    Weights keep the scale of torchvision's initialisation; batch-norm scales are near 1, shifts and
    running means near 0 and running variances in [0.5, 1.5], so activations stay finite. The same seed
    gives the same state; torch's global random state is left as it was.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # torchvision's initialisation draws from the global generator
        torch.manual_seed(seed)
        module = torchvision.models.get_model(name, weights=None)
    state = {}
    for key, value in module.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = value
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(value.shape, generator=gen)
        elif value.dim() > 1:
            state[key] = torch.randn(value.shape, generator=gen) * value.std().clamp_min(1e-3)
        else:
            state[key] = 0.1 * torch.randn(value.shape, generator=gen) + (1.0 if key.endswith("weight") else 0.0)
    return state


def standin_path(name: str, weights: str = "pretrained") -> Path:
    """Where torchvision's cache keeps ``name``'s ``weights``: ``torch.hub.get_dir()/checkpoints/<the URL's file>``."""
    enum = torchvision.models.get_model_weights(name)
    entry = enum[M.ORIGINAL_WEIGHTS[name] if weights == "pretrained" else weights]
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(entry.url).name


def write_standin(name: str, weights: str = "pretrained", seed: int = 0) -> Path:
    """Save a random-weight stand-in in the published format at the cache path of ``name``'s ``weights``.

    The cache is ``torch.hub.get_dir()`` (set ``TORCH_HOME`` first). Returns the path.
    """
    path = standin_path(name, weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = random_state(name, seed)
    if name == "densenet121":  # the published densenet121-a639ec97.pth: legacy names, legacy serialisation
        torch.save(legacy_densenet_state(state), path, _use_new_zipfile_serialization=False)
    else:
        torch.save(state, path)
    return path


# ----------------------------------------------------------------------------------- memory


class PeakMemory:
    """Poll the process tree below this process; keep each process's largest ``VmHWM`` (bytes).

    ``peak_bytes`` is the sum over the processes seen; ``abort_bytes`` kills the tree when exceeded.
    """

    def __init__(self, interval: float = 0.1, abort_bytes: float | None = None) -> None:
        self.interval = interval
        self.abort_bytes = abort_bytes
        self.per_pid: dict[int, int] = {}
        self.aborted = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _hwm(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        try:  # no /proc (not Linux): the current resident set size instead
            return psutil.Process(pid).memory_info().rss
        except psutil.Error:
            return 0

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            try:
                children = me.children(recursive=True)
            except psutil.Error:
                children = []
            for child in children:
                value = self._hwm(child.pid)
                if value > self.per_pid.get(child.pid, 0):
                    self.per_pid[child.pid] = value
            if self.abort_bytes is not None and self.peak_bytes > self.abort_bytes and not self.aborted:
                self.aborted = True
                for child in children:
                    try:
                        child.kill()
                    except psutil.Error:
                        pass
            self._stop.wait(self.interval)

    @property
    def peak_bytes(self) -> int:
        return sum(self.per_pid.values())

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# ----------------------------------------------------------------------------------- the check


@dataclass
class Run:
    notebook: str
    model: str
    ok: bool
    seconds: float
    peak_gb: float
    note: str


def _execute(path: Path, *, quick: bool, timeout: int, output: Path, env: dict[str, str]) -> float:
    """``execute_notebook`` with a per-cell timeout."""
    return execute_notebook(path, quick=quick, output=output, env=env, cell_timeout=timeout)


def _notebook(number: str) -> Path:
    found = sorted((ROOT / "notebooks").glob(f"{number}_*.ipynb"))
    if len(found) != 1:
        raise SystemExit(f"--notebooks: no single notebook numbered {number!r} in {ROOT / 'notebooks'}")
    return found[0]


def _opening_output(path: Path) -> str:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    return "".join(o.get("text", "") for o in first.get("outputs", []) if o.get("output_type") == "stream")


def check(notebooks: list[str], models: list[str], out_dir: Path, *, timeout: int, limit_gb: float,
          abort_gb: float, quick: bool = True) -> list[Run]:
    out_dir.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="check-models-torch-home-"))
    runs: list[Run] = []
    saved = os.environ.get("TORCH_HOME")
    try:
        os.environ["TORCH_HOME"] = str(home)  # torch.hub.get_dir() in this process, for the stand-ins' paths
        for name in models:
            if name in M.ORIGINAL_WEIGHTS:
                print(f"stand-in: {write_standin(name)}", flush=True)
        for name in models:
            for number in notebooks:
                path = _notebook(number)
                output = out_dir / f"{path.stem}-{name}.ipynb"
                env = {**os.environ, "TORCH_HOME": str(home), "INTERP_MODEL": name, "TQDM_DISABLE": "1"}
                env.pop("INTERP_WEIGHTS", None)
                start = time.perf_counter()
                note = ""
                with PeakMemory(abort_bytes=abort_gb * 2**30) as memory:
                    try:
                        _execute(path, quick=quick, timeout=timeout, output=output, env=env)
                        ok = True
                    except Exception as exc:  # noqa: BLE001 - report and go on with the next notebook
                        ok = False
                        note = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
                seconds = time.perf_counter() - start
                peak_gb = memory.peak_bytes / 2**30
                if memory.aborted:
                    ok, note = False, f"killed: kernel memory went over {abort_gb} GB. {note}"
                if ok:
                    opening = _opening_output(output)
                    if f"Model: {name} " not in opening or "FALLBACK" in opening:
                        ok, note = False, f"the opening cell did not run {name}: {opening[-300:]!r}"
                if ok and peak_gb >= limit_gb:
                    ok, note = False, f"peak memory {peak_gb:.2f} GB is over the {limit_gb} GB budget"
                runs.append(Run(path.stem, name, ok, round(seconds, 1), round(peak_gb, 2), note))
                print(f"{'ok  ' if ok else 'FAIL'} {path.stem:34s} {name:18s} {seconds:7.1f} s  "
                      f"peak {peak_gb:5.2f} GB  {note}", flush=True)
    finally:
        if saved is None:
            os.environ.pop("TORCH_HOME", None)
        else:
            os.environ["TORCH_HOME"] = saved
        shutil.rmtree(home, ignore_errors=True)
    return runs


def table(runs: list[Run]) -> str:
    lines = ["| notebook | model | result | wall time | peak memory (kernel) |", "|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r.notebook} | {r.model} | {'ok' if r.ok else 'FAIL: ' + r.note} | "
                     f"{r.seconds:.0f} s | {r.peak_gb:.2f} GB |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", nargs="+", default=list(DEFAULT_NOTEBOOKS), help="notebook numbers")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=M.MODEL_NAMES)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "check-models",
                        help="where the executed notebooks and results.json go")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--limit-gb", type=float, default=LIMIT_GB, help="peak memory budget per notebook")
    parser.add_argument("--full", action="store_true", help="full mode (INTERP_QUICK=0) instead of quick mode")
    parser.add_argument("--abort-gb", type=float, default=12.0, help="kill a kernel that goes over this")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    runs = check(args.notebooks, args.models, args.out, timeout=args.timeout, limit_gb=args.limit_gb,
                 abort_gb=args.abort_gb, quick=not args.full)
    load_after = os.getloadavg()
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, "
               f"{psutil.virtual_memory().total / 2**30:.0f} GB RAM, "
               f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print()
    print(f"mode: {'full' if args.full else 'quick'}; machine: {machine}; "
          f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f}")
    print(table(runs))
    (args.out / "results.json").write_text(json.dumps(
        {"machine": machine, "load_before": load_before, "load_after": load_after,
         "runs": [asdict(r) for r in runs]}, indent=2))
    failed = [r for r in runs if not r.ok]
    if failed:
        print(f"\n{len(failed)} of {len(runs)} runs failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
