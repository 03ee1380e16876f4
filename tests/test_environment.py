"""environment.yml and pyproject.toml must name the same packages with the same bounds."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(spec: str) -> str:
    return re.split(r"[<>=!~\[ ;]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    py_specs = list(project["dependencies"]) + list(project["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert {_name(s): s.replace(" ", "") for s in py_specs} == {_name(s): s.replace(" ", "") for s in pip_section}


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
    commands = [l for l in ci.splitlines() if l.strip() and not l.startswith("#")
                and not l.startswith(("set ", "cd "))]
    assert commands == ["make test"]
    assert "make test" in (ROOT / "README.md").read_text()
    assert "make run" in (ROOT / "README.md").read_text()
