"""environment.yml (conda) and pyproject.toml (pip) must describe the same environment."""

import re
import tomllib

import yaml

from sepnb import paths


def _norm(req: str) -> str:
    name, _, rest = re.match(r"([A-Za-z0-9_.\-]+)(.*)", req.strip()).group(1, 0, 2)
    return re.sub(r"[-_.]+", "-", name).lower() + rest.replace(" ", "")


def _pyproject():
    return tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]


def _conda():
    return yaml.safe_load((paths.ROOT / "environment.yml").read_text())["dependencies"]


def test_pip_section_matches_pyproject_dependencies():
    pip = next(d["pip"] for d in _conda() if isinstance(d, dict) and "pip" in d)
    assert "-e ." in pip, "environment.yml must install the package itself (-e .)"
    conda_reqs = sorted(_norm(r) for r in pip if r != "-e .")
    py_reqs = sorted(_norm(r) for r in _pyproject()["dependencies"])
    assert conda_reqs == py_reqs


def test_every_dependency_is_pinned():
    for req in _pyproject()["dependencies"]:
        assert "==" in req, f"{req} is not pinned"


def test_python_versions_agree():
    conda_python = next(d for d in _conda() if isinstance(d, str) and d.startswith("python"))
    version = conda_python.split("=", 1)[1]
    assert _pyproject()["requires-python"] == ">=3.11" and version.startswith("3.11")
