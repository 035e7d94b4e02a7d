"""The project's promises about itself: the two commands, the lock and the ranges, the notebook pairs."""

import re
import tomllib
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _ranges_from_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [d for group in project["optional-dependencies"].values() for d in group]
    return [Requirement(s) for s in specs]


def _lock():
    lines = (ROOT / "requirements-lock.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if line.strip() and not line.startswith("#"))


def test_the_lock_pins_every_dependency_within_its_declared_range():
    lock = _lock()
    for req in _ranges_from_pyproject():
        assert req.name in lock, f"{req.name} is declared in pyproject.toml but not pinned in requirements-lock.txt"
        assert req.specifier.contains(lock[req.name]), f"the lock's {req.name}=={lock[req.name]} is outside {req}"
        assert not any(s.operator == "==" for s in req.specifier), f"pyproject.toml pins {req}: declare a range"
    assert set(lock) == {r.name for r in _ranges_from_pyproject()}, "the lock pins what pyproject declares, no more"


def test_the_two_set_up_routes_install_the_lock():
    assert "-r requirements-lock.txt" in (ROOT / "environment.yml").read_text()
    assert '"requirements-lock.txt"' in (ROOT / "tasks.py").read_text()


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"^(python3 tasks\.py \w+)", readme, flags=re.M)
    assert commands[:2] == ["python3 tasks.py run", "python3 tasks.py test"], commands
    assert "exec python3 tasks.py test\n" in ci


def test_there_are_six_notebooks_each_with_its_py_percent_twin():
    assert [p.stem for p in NOTEBOOKS] == ["01_plain_vae", "02_deriving_the_loss", "03_mnist",
                                           "04_fashion_mnist", "05_what_matters", "06_why_runs_get_stuck"]
    for p in NOTEBOOKS:
        assert p.with_suffix(".py").exists(), f"{p.name} has no .py twin"
    assert sorted(p.stem for p in (ROOT / "notebooks").glob("0*.py")) == [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_ipynb_and_py_twin_hold_the_same_cells(path):
    import jupytext
    twin = jupytext.read(path.with_suffix(".py"))
    nb = nbformat.read(path, as_version=4)
    assert [(c.cell_type, c.source.strip()) for c in nb.cells] == \
           [(c.cell_type, c.source.strip()) for c in twin.cells]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_outputs_come_from_a_full_run(path):
    nb = nbformat.read(path, as_version=4)
    stamp = nb.metadata.get("vaeclust", {})
    assert stamp.get("mode") == "full", f"{path.name}: run `python3 tasks.py notebooks {path}`"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), f"{path.name} has unexecuted cells"
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for c in code for o in c.outputs)
    assert "QUICK MODE" not in text and "quick mode" not in text
    assert not any(o.output_type == "error" for c in code for o in c.outputs)
    assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs), "figures inline"


def test_notebooks_import_the_package_rather_than_define_functions():
    for p in NOTEBOOKS:
        nb = nbformat.read(p, as_version=4)
        defs = [line for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines()
                if line.startswith("def ") or line.startswith("class ")]
        assert len(defs) <= 1, f"{p.name} defines {defs}: move them into the package"
