"""Dependencies: the wheel needs what interp_helpers imports, and environment.yml names what pyproject.toml names."""
import ast
import importlib.metadata
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(spec: str) -> str:
    return re.split(r"[<>=!~\[ ;]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert set(extras) == {"test", "docs"}
    py_specs = list(project["dependencies"]) + list(extras["test"]) + list(extras["docs"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert {_name(s): s.replace(" ", "") for s in py_specs} == {_name(s): s.replace(" ", "") for s in pip_section}


def _dist(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_core_dependencies_are_exactly_what_the_package_imports():
    """The wheel's dependencies are the distributions behind interp_helpers' own imports; the notebook runner,
    site renderer and MathJax (nbclient, nbconvert, jupyter-server-mathjax) live in the [docs] extra."""
    modules = set()
    for path in (ROOT / "interp_helpers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split(".")[0])
    providers = importlib.metadata.packages_distributions()
    imported = {_dist(d) for m in modules for d in providers.get(m, [])} - {"interp-helpers"}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert imported == {_dist(_name(s)) for s in project["dependencies"]}
    docs = {_dist(_name(s)) for s in project["optional-dependencies"]["docs"]}
    assert {"nbclient", "nbconvert", "nbformat", "jupyter-server-mathjax", "ipykernel", "jupyter"} <= docs


def test_torch_requirement_is_a_floor_the_installed_build_meets():
    """A range such as torch>=2.2, never a pin to a newer release than the machine's local build."""
    import importlib.metadata

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_spec = next(s for s in project["dependencies"] if _name(s) == "torch")
    match = re.fullmatch(r"torch>=(\d+)\.(\d+)", torch_spec)
    assert match, torch_spec
    installed = tuple(int(v) for v in importlib.metadata.version("torch").split("+")[0].split(".")[:2])
    assert installed >= (int(match[1]), int(match[2]))


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [line for line in ci.splitlines() if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert commands == ["make test"]
    assert "make test" in (ROOT / "README.md").read_text()
    assert "make run" in (ROOT / "README.md").read_text()
