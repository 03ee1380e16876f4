"""tools/check_models.py: the peak-memory probe measures a child process, and the stand-ins are what it claims.

(That the stand-ins load as torchvision's builders load the published files: tests/test_models.py.)"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from tools.check_models import PeakMemory, Run, legacy_densenet_state, random_state, standin_path, table


def test_peak_memory_sees_a_child_processes_high_water_mark():
    """A child that touches 300 MB and frees it again: the probe reports at least that, not the current RSS."""
    code = "import time; b = bytearray(300 * 2**20); del b; time.sleep(1.0)"
    with PeakMemory(interval=0.05) as memory:
        subprocess.run([sys.executable, "-c", code], check=True)
    assert 300 * 2**20 <= memory.peak_bytes < 2 * 2**30


def test_peak_memory_kills_a_runaway_child():
    code = "import time; b = bytearray(400 * 2**20); time.sleep(30)"
    with PeakMemory(interval=0.05, abort_bytes=200 * 2**20) as memory:
        result = subprocess.run([sys.executable, "-c", code], check=False)
    assert memory.aborted and result.returncode != 0


def test_legacy_densenet_names_are_the_published_ones():
    state = {"features.denseblock1.denselayer1.norm1.weight": torch.ones(1),
             "features.denseblock1.denselayer1.conv2.weight": torch.ones(1),
             "features.denseblock1.denselayer1.norm1.num_batches_tracked": torch.tensor(0),
             "features.transition1.norm.weight": torch.ones(1), "classifier.bias": torch.ones(1)}
    assert list(legacy_densenet_state(state)) == [
        "features.denseblock1.denselayer1.norm.1.weight", "features.denseblock1.denselayer1.conv.2.weight",
        "features.transition1.norm.weight", "classifier.bias"]
    assert "| 05_x | densenet121 | ok | 12 s | 3.25 GB |" in table([Run("05_x", "densenet121", True, 12.0, 3.25, "")])


def test_the_runner_gets_the_per_cell_timeout(monkeypatch):
    import tools.check_models as C

    calls = []

    def runner(path, *, quick, output=None, cell_timeout=600, total_timeout=None, env=None):
        calls.append((quick, cell_timeout))
        return 1.0

    monkeypatch.setattr(C, "execute_notebook", runner)
    C._execute(Path("x.ipynb"), quick=True, timeout=77, output=Path("y.ipynb"), env={})
    assert calls == [(True, 77)]


def test_standins_sit_at_the_published_paths_with_random_finite_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert standin_path("densenet121") == tmp_path / "hub" / "checkpoints" / "densenet121-a639ec97.pth"
    assert standin_path("resnet50", "IMAGENET1K_V2").name == "resnet50-11ad3fa6.pth"
    a, b = random_state("resnet50", 0), random_state("resnet50", 1)
    assert a.keys() == b.keys() and all(torch.isfinite(v.float()).all() for v in a.values())
    assert not torch.equal(a["fc.weight"], b["fc.weight"])
    assert torch.equal(a["fc.weight"], random_state("resnet50", 0)["fc.weight"])  # the same seed, the same file
    assert (a["layer1.0.bn1.running_var"] >= 0.5).all()
