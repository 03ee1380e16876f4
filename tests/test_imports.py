"""Light imports: ``import interp_helpers`` loads no heavy library, and every exported name still resolves.

The package exports its names lazily (PEP 562 ``__getattr__``); each module imports
matplotlib, shap, catboost, pandas, scipy.stats, skimage and torchvision's model zoo
inside the functions that use them. The checks run in fresh interpreters, since this
test process has imported everything already.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import interp_helpers as ih

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "interp_helpers"

HEAVY = ("matplotlib", "matplotlib.pyplot", "scipy.stats", "skimage", "torchvision", "torchvision.models", "timm",
         "shap", "catboost", "eli5", "pandas", "sklearn")

#: exported names whose module imports heavy libraries at module level (none today; a place for exceptions)
KNOWN_HEAVY_MODULES: set[str] = set()


def _run(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


def _loaded_after(statements: str) -> list[str]:
    code = f"import sys\n{statements}\nimport json; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    return json.loads(_run(code))


def test_import_interp_helpers_loads_no_heavy_library():
    assert _loaded_after("import interp_helpers") == []
    assert _loaded_after("import torch, interp_helpers") == []


def test_every_exported_name_resolves_lazily():
    names = ih.__all__
    assert len(names) == len(set(names)) >= 57
    code = (
        "import interp_helpers as ih, json\n"
        "before = set(vars(ih))\n"
        "values = {n: getattr(ih, n) for n in ih.__all__}\n"
        "missing = [n for n in ih.__all__ if n not in dir(ih)]\n"
        "ns = {}\nexec('from interp_helpers import *', ns)\n"
        "print(json.dumps({'lazy': sorted(set(ih.__all__) & before), 'missing': missing,"
        " 'star': sorted(set(ih.__all__) - set(ns)), 'none': [n for n, v in values.items() if v is None]}))"
    )
    result = json.loads(_run(code))
    assert result == {"lazy": [], "missing": [], "star": [], "none": []}
    for name in names:  # and here, in this process, every name is the object its module defines
        value = getattr(ih, name)
        module = ih._EXPORTS[name]
        assert value is getattr(__import__(f"interp_helpers.{module}", fromlist=[name]), name), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ih.nope  # noqa: B018
    assert ih.tabular.tree_shap is ih.tree_shap and ih.maps.reduce_channels is ih.reduce_channels


@pytest.mark.parametrize("group", ["images", "attribution", "plotting", "tabular"])
def test_using_a_part_of_the_package_loads_only_what_it_needs(group):
    """Resolving the names a notebook uses loads no library that only drawing or other notebooks need."""
    own = ("data", "images", "models", "notebook", "maps") if group == "images" else ()
    names = [n for n, m in ih._EXPORTS.items() if m.split(".")[0] == group or m in own]
    names = [n for n in names if ih._EXPORTS[n] not in KNOWN_HEAVY_MODULES]
    assert names
    loaded = _loaded_after("import interp_helpers as ih\n" + "\n".join(f"ih.{n}" for n in names))
    assert loaded == [], f"resolving {names} imported {loaded}"


def test_no_module_imports_another_modules_private_names():
    """Public names only across modules (issue #11), in every module of the package.

    A package-internal *module* whose name starts with an underscore (``_rng``) may be imported;
    a private function, class or constant of another module may not.
    """
    files = sorted(PACKAGE.rglob("*.py"))
    private_modules = {f.stem for f in files if f.stem.startswith("_") and f.stem != "__init__"}
    offenders = []
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                offenders += [f"{file.relative_to(PACKAGE)}: {a.name}" for a in node.names
                              if a.name.startswith("_") and a.name not in private_modules]
    assert len(files) > 30 and offenders == []


def test_import_time_compared_with_torch(capsys):
    """Report (not a benchmark) the cost of ``import interp_helpers`` on top of ``import torch``.

    ``-X importtime`` gives each module's cumulative import time in microseconds; the limit
    asserted is loose (2 s), only to catch a heavy library creeping back into the import.
    """
    code = "import torch\nimport interp_helpers\nimport interp_helpers.plotting, interp_helpers.tabular\nprint('ok')"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    cumulative = {}
    for line in out.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            cumulative[parts[2].strip()] = int(parts[1]) / 1e6
    torch_s = cumulative["torch"]
    ours = {m: cumulative[m] for m in ("interp_helpers", "interp_helpers.plotting", "interp_helpers.tabular")}
    with capsys.disabled():
        print(f"\nimport time: torch {torch_s:.3f} s; " + ", ".join(f"{m} +{t:.3f} s" for m, t in ours.items()))
    assert sum(ours.values()) < 2.0, ours
