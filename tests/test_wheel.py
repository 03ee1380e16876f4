"""The package as users install it: build the wheel offline, install it elsewhere, use it from there.

Catches what a checkout hides: a module or data folder missing from ``[tool.setuptools] packages``,
a data file missing from ``package-data``, a path built from ``__file__`` that points
into the repository. Offline: ``--no-build-isolation`` (setuptools from this
environment, nothing downloaded), ``--no-index``, ``--no-deps``.

The sources are copied to a temporary folder first, so the build writes no
``build/`` or ``*.egg-info`` into the checkout.

The development environment has this project installed *editable*: setuptools'
``__editable___*_finder`` is appended to ``sys.meta_path`` by a ``.pth`` file. Being
last, it loses to ``PYTHONPATH`` for ``interp_helpers`` itself, but it would still
answer for a *subpackage missing from the wheel* (it maps ``interp_helpers.<child>``
to the editable checkout) and so hide exactly the bug this test looks for. The
installed copy is therefore run with ``PYTHONPATH=<site>`` (``python -I`` would drop
it; ``-s`` drops only the user site), from a working directory outside the checkout,
with the editable finder removed from ``sys.meta_path``, and every loaded
``interp_helpers`` module must come from ``<site>``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "interp_helpers"

pytestmark = [pytest.mark.wheel, pytest.mark.timeout(120)]

SCRIPT = r"""
import json, sys
# the editable install's finder (see the module docstring): drop it so nothing can come from a checkout
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
import torch
from torch import nn
import interp_helpers as ih
from interp_helpers.methods import smoothgrad
X, y = ih.load_boston()
photo = ih.load_image("curie")
torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(4, 3)).eval()
x = torch.rand(2, 3, 8, 8)
sg = smoothgrad(model, x, 1, n_samples=4, seed=0)
names = {n: type(getattr(ih, n)).__name__ for n in ih.__all__}
print(json.dumps({
    "file": ih.__file__,
    "modules": {m: getattr(mod, "__file__", None) for m, mod in sys.modules.items()
                if m == "interp_helpers" or m.startswith("interp_helpers.")},
    "boston": [len(X), X.shape[1], len(y)],
    "photo": [photo.mode, *photo.size],
    "examples": [str(e.resource()) for e in ih.example_images() if e.package == "interp_helpers"],
    "smoothgrad": [list(sg.shape), bool(torch.isfinite(sg).all()), bool(sg.abs().sum() > 0)],
    "names": len(names),
}))
"""


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    out = subprocess.run(args, check=False, capture_output=True, text=True, timeout=300, **kw)
    shown = [a if len(a) < 200 else "<script>" for a in args]
    assert out.returncode == 0, f"{shown}\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(PACKAGE, src / "interp_helpers", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1"}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(tmp / "dist"), str(src)], env=env, cwd=tmp)
    (built,) = sorted((tmp / "dist").glob("interp_helpers-*.whl"))
    return built


def test_wheel_holds_every_module_and_data_file(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    expected = {p.relative_to(REPO).as_posix() for p in PACKAGE.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")}
    assert expected - names == set()
    assert "interp_helpers/package_data/boston_housing.csv" in names
    assert not [n for n in names if n.startswith(("tests/", "notebooks/", "data/", "tools/"))]


def test_installed_wheel_works_outside_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1"}
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site),
          str(wheel)], env=env, cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=str(site), PYTHONNOUSERSITE="1", OMP_NUM_THREADS="1")
    out = _run([sys.executable, "-s", "-c", SCRIPT], env=env, cwd=elsewhere)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    root = site.resolve()
    assert Path(result["file"]).resolve().is_relative_to(root)
    outside = {m: f for m, f in result["modules"].items() if f is None or not Path(f).resolve().is_relative_to(root)}
    assert outside == {}, outside
    assert "interp_helpers.methods" in result["modules"]
    assert result["boston"] == [506, 13, 506]
    assert result["photo"] == ["RGB", 232, 325]
    assert len(result["examples"]) == 10
    assert all(Path(p).resolve().is_relative_to(root) for p in result["examples"])
    assert result["smoothgrad"] == [[2, 3, 8, 8], True, True]
    import interp_helpers  # the checkout's package: the wheel must export the same names

    assert result["names"] == len(interp_helpers.__all__)
