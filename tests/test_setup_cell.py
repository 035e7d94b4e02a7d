"""The notebooks' setup cell, run the way it runs outside the repository (Colab, a bare Jupyter):
a fresh virtual environment that already has torch and the rest, no vaeclust_tutorial, the
working folder outside any clone. docs/colab.md describes what it does."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))


def setup_cell(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    return "".join(next(c for c in cells if c["cell_type"] == "code")["source"])


def test_every_notebook_has_the_same_setup_cell():
    def install_part(cell):      # the cell installs, then imports what each notebook needs
        return cell[:cell.index("\n", cell.index("subprocess.check_call"))]

    first = install_part(setup_cell(NOTEBOOKS[0]))
    assert "VAECLUST_SOURCE" in first and "Path.cwd().parent)" not in first
    for notebook in NOTEBOOKS[1:]:
        assert install_part(setup_cell(notebook)) == first, notebook.name


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The package as a wheel, one of the sources docs/colab.md documents."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"          # a copy: building writes build/ and *.egg-info/ beside the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "vaeclust_tutorial", source / "vaeclust_tutorial",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    str(source), "-w", str(tmp / "dist")], check=True, cwd=tmp)
    return next((tmp / "dist").glob("vaeclust_tutorial-*.whl"))


@pytest.fixture
def colab_like(tmp_path, wheel):
    """A fresh venv per test that sees this environment's packages (torch, numpy, ...) but not
    ours, like Colab."""
    tmp = tmp_path
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(tmp / "venv")],
                   check=True)      # pip, like torch, comes with the preinstalled packages
    python = tmp / "venv" / "bin" / "python"
    # this environment's site-packages without the package (and its editable-install hook)
    shared = tmp / "preinstalled"
    shared.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith(("vaeclust", "__editable__", "_vaeclust")):
            (shared / entry.name).symlink_to(entry)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "preinstalled.pth").write_text(str(shared) + "\n")
    outside = tmp / "outside"
    outside.mkdir()
    return python, wheel, outside, Path(site)


def run_cell(python, cwd, extra_env, after=""):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VAECLUST_SOURCE")}
    env["PIP_NO_INDEX"] = "1"     # offline: a pip that wanted to (re)install torch fails the test
    env.update(extra_env)
    code = setup_cell(NOTEBOOKS[0]).split("%matplotlib")[0] + after
    return subprocess.run([str(python), "-c", code], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.mark.slow
def test_without_a_source_the_cell_says_what_to_do(colab_like):
    python, _, outside, _ = colab_like
    done = run_cell(python, outside, {})
    assert done.returncode != 0
    assert "RuntimeError" in done.stderr and "VAECLUST_SOURCE" in done.stderr and "docs/colab.md" in done.stderr


@pytest.mark.slow
def test_the_cell_installs_the_wheel_and_keeps_the_torch_already_there(colab_like):
    python, wheel, outside, site = colab_like
    torch_before = subprocess.run([str(python), "-c", "import torch; print(torch.__file__)"],
                                  capture_output=True, text=True, check=True).stdout.strip()
    done = run_cell(python, outside, {"VAECLUST_SOURCE": str(wheel)},
                    after="\nimport torch, vaeclust_tutorial\nprint(vaeclust_tutorial.__file__)\nprint(torch.__file__)\n")
    assert done.returncode == 0, done.stderr[-2000:]
    package, torch_after = done.stdout.strip().splitlines()[-2:]
    assert Path(package).is_relative_to(site)              # installed into the fresh venv
    assert torch_after == torch_before                     # torch left as it was
    assert not (site / "torch").exists()
    assert (Path(package).parent / "checkpoints").is_dir()  # the shipped models come with it
