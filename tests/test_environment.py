"""The environment is pinned whole: requirements.lock (hashed) covers every pin of pyproject.toml, and
both the Makefile and environment.yml install from it."""

import re
import tomllib

import yaml

from sepnb.core import paths


def _norm(req: str) -> str:
    name, rest = re.match(r"([A-Za-z0-9_.\-]+)(.*)", req.strip()).group(1, 2)
    return re.sub(r"[-_.]+", "-", name).lower() + rest.split(";")[0].replace(" ", "")


def _pyproject():
    return tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]


def _declared() -> list[str]:
    p = _pyproject()
    return p["dependencies"] + [r for extra in p["optional-dependencies"].values() for r in extra]


def _lock() -> dict[str, str]:
    """``{name: "name==version"}`` of requirements.lock; every entry must carry hashes."""
    text = (paths.ROOT / "requirements.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2] if text.startswith("#") else text)
    out = {}
    for entry in entries:
        if not entry.strip() or entry.lstrip().startswith("#"):
            continue
        req = entry.split("\\")[0].strip()
        assert "--hash=sha256:" in entry, f"{req} has no hash in requirements.lock"
        pin = _norm(req)
        assert "==" in pin, f"{req} is not pinned in requirements.lock"
        out[pin.split("==")[0]] = pin
    return out


def test_every_declared_dependency_is_pinned_and_locked_at_that_version():
    lock = _lock()
    for req in _declared():
        assert "==" in req, f"{req} is not pinned in pyproject.toml"
        pin = _norm(req)
        assert lock.get(pin.split("==")[0]) == pin, f"{req} is not in requirements.lock at that version; run make lock"


def test_lock_holds_the_whole_tree():
    # the transitive dependencies are pinned too, not only what pyproject names
    lock = _lock()
    assert len(lock) > 3 * len(_declared())
    for name in ("sphinx", "myst-nb", "nbclient", "jupyter-client", "scipy"):
        assert name in lock, f"{name} is not pinned in requirements.lock"


def test_makefile_and_conda_install_from_the_lock():
    make = (paths.ROOT / "Makefile").read_text()
    assert "--require-hashes --no-deps -r $(LOCK)" in make and "LOCK   := requirements.lock" in make
    deps = yaml.safe_load((paths.ROOT / "environment.yml").read_text())["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert "-r requirements.lock" in pip and "--require-hashes" in pip


def test_python_versions_agree():
    deps = yaml.safe_load((paths.ROOT / "environment.yml").read_text())["dependencies"]
    conda_python = next(d for d in deps if isinstance(d, str) and d.startswith("python"))
    assert _pyproject()["requires-python"] == ">=3.11,<3.12" and conda_python.split("=", 1)[1].startswith("3.11")
    assert "--python-version 3.11.5" in (paths.ROOT / "requirements.lock").read_text().split("\n", 3)[1]


def test_every_package_sepnb_imports_is_declared():
    """Each third-party module imported anywhere in sepnb/ comes from a distribution pyproject.toml names
    (as a dependency or in an extra), never only through another package's dependencies."""
    import ast
    import importlib.metadata
    import sys

    declared = {_norm(r).split("==")[0] for r in _declared()}
    dists = importlib.metadata.packages_distributions()
    imported = set()
    for path in (paths.ROOT / "sepnb").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    third = sorted(m for m in imported if m not in sys.stdlib_module_names and m != "sepnb" and m != "__future__")
    undeclared = {}
    for module in third:
        names = {re.sub(r"[-_.]+", "-", d).lower() for d in dists.get(module, [])}
        if not names & declared:
            undeclared[module] = sorted(names) or ["(not installed)"]
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
