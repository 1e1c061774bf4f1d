"""The environment is pinned whole: requirements.lock (hashed) covers every pin of pyproject.toml, and
both the Makefile and environment.yml install from it."""

import re
import tomllib

import yaml

from sepnb import paths


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
    assert _pyproject()["requires-python"] == ">=3.11" and conda_python.split("=", 1)[1].startswith("3.11")
    assert "--python-version 3.11.5" in (paths.ROOT / "requirements.lock").read_text().split("\n", 3)[1]
