"""interp_helpers.notebook: the opening cell -- quick mode, seed, figure resolution, and which model runs and why."""
from __future__ import annotations

import os
import pickle

import matplotlib
import numpy as np
import pytest
import torch

from interp_helpers._common import DEFAULT_SEED
from interp_helpers.notebook import MIN_FIGURE_DPI, setup_notebook
from tools.check_models import standin_path, write_standin

MARKER = "/tmp/interp_helpers_notebook_pwned"


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """A temporary torchvision cache (nothing is reachable, so nothing is downloaded) and no INTERP_* settings."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for name in ("INTERP_MODEL", "INTERP_WEIGHTS", "INTERP_QUICK"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "torch"


def test_a_notebook_without_an_image_model_prints_its_settings(torch_home, capsys):
    setup = setup_notebook(None, seed=7)
    out = capsys.readouterr().out
    assert setup.model is None and setup.seed == 7 and not setup.quick
    assert setup.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert out.startswith("Versions: python ") and "torch " + torch.__version__.split("+")[0] in out
    assert "Mode: full" in out and out.rstrip().endswith("Seed: 7") and "Model:" not in out
    assert setup_notebook(None, verbose=False).seed == DEFAULT_SEED
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("value,quick", [("1", True), ("true", True), ("YES", True), ("0", False), ("", False),
                                         ("no", False)])
def test_quick_mode_comes_from_interp_quick(torch_home, monkeypatch, value, quick):
    monkeypatch.setenv("INTERP_QUICK", value)
    setup = setup_notebook(None, verbose=False)
    assert setup.quick is quick and setup.pick("full", "quick") == ("quick" if quick else "full")


def test_bad_settings_are_refused(torch_home, monkeypatch):
    with pytest.raises(ValueError, match="seed.*None"):
        setup_notebook(None, seed=None)  # a notebook's seed is printed and reused: it must be a number
    with pytest.raises(ValueError, match="seed"):
        setup_notebook(None, seed=-1)
    with pytest.raises(ValueError, match="default_model.*vgg16"):
        setup_notebook("vgg16")
    monkeypatch.setenv("INTERP_MODEL", "vgg16")
    with pytest.raises(ValueError, match="INTERP_MODEL.*vgg16"):
        setup_notebook("densenet121")
    monkeypatch.setenv("INTERP_QUICK", "maybe")
    with pytest.raises(ValueError, match="INTERP_QUICK.*maybe"):
        setup_notebook(None)


def test_figure_dpi_is_raised_to_100_and_never_lowered(torch_home):
    with matplotlib.rc_context({"figure.dpi": 64}):
        setup_notebook(None, verbose=False)
        assert matplotlib.rcParams["figure.dpi"] == MIN_FIGURE_DPI == 100
    with matplotlib.rc_context({"figure.dpi": 150}):
        setup_notebook(None, verbose=False)
        assert matplotlib.rcParams["figure.dpi"] == 150


@pytest.mark.parametrize("kind,fragment", [
    ("missing", "not cached and cannot be downloaded"),
    ("corrupt", "densenet121-a639ec97.pth"),
    ("needs pickle", "needs pickle"),
])
def test_the_original_model_falls_back_on_any_failure_and_says_why_in_one_line(torch_home, capsys, kind, fragment):
    if os.path.exists(MARKER):
        os.remove(MARKER)
    path = standin_path("densenet121")
    path.parent.mkdir(parents=True)
    if kind == "corrupt":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "needs pickle":
        path.write_bytes(pickle.dumps({"features.conv0.weight": _Evil()}))
    setup = setup_notebook("densenet121")
    assert setup.model.name == "efficientnet_lite0"
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "FALLBACK" in line]
    assert len(lines) == 1 and lines[0].startswith("Why this model: FALLBACK to efficientnet_lite0: densenet121")
    assert fragment in lines[0] and "Model: efficientnet_lite0 -- ImageNet weights from the" in out
    assert not os.path.exists(MARKER)


def test_the_original_model_runs_when_its_file_is_there(torch_home, capsys):
    write_standin("densenet121")
    setup = setup_notebook("densenet121")
    out = capsys.readouterr().out
    assert setup.model.name == "densenet121" and "FALLBACK" not in out
    assert "DenseNet121_Weights.IMAGENET1K_V1 -- the original tutorials' pretrained=True weights" in out
    assert "Why this model: densenet121 is this notebook's original model" in out


def test_a_model_asked_for_by_name_is_loaded_or_fails_loudly(torch_home, monkeypatch, capsys):
    monkeypatch.setenv("INTERP_MODEL", "densenet121")
    with pytest.raises(Exception, match="densenet121-a639ec97.pth"):  # no fallback: this model was asked for
        setup_notebook("resnet50")
    write_standin("resnet50", "IMAGENET1K_V2")
    monkeypatch.setenv("INTERP_MODEL", "resnet50")
    monkeypatch.setenv("INTERP_WEIGHTS", "IMAGENET1K_V2")
    setup = setup_notebook("densenet121")
    out = capsys.readouterr().out
    assert setup.model.name == "resnet50" and "ResNet50_Weights.IMAGENET1K_V2" in out and "resize 232" in out
    assert "chosen with INTERP_MODEL=resnet50" in out
    monkeypatch.setenv("INTERP_MODEL", "efficientnet_lite0")  # INTERP_WEIGHTS is for torchvision's models only
    assert setup_notebook("densenet121", verbose=False).model.name == "efficientnet_lite0"
    monkeypatch.setenv("INTERP_MODEL", "resnet50")
    monkeypatch.setenv("INTERP_WEIGHTS", "IMAGENET1K_V9")
    with pytest.raises(ValueError, match="IMAGENET1K_V9"):
        setup_notebook("densenet121")
