#!/usr/bin/env python3
"""Execute the tutorial notebooks in place, in full mode, and stamp how they were run.

    python tools/run_notebooks.py [NOTEBOOK.ipynb ...] [--readme README.md] [--no-execute]

(``python3 tasks.py notebooks``.) Runs each notebook top to bottom with ``VAECLUST_QUICK``
unset, saves the outputs into the ``.ipynb`` (the jupytext ``.py`` twin carries none) and
records in the notebook's metadata the mode, the package version, the git commit and the
seconds it took. The test suite checks that every committed notebook was executed this way.
``--readme`` writes the notebook list with each one's full-mode time into the README's
``notebooks`` block.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:        # run as `python tools/run_notebooks.py`
    sys.path.insert(0, str(ROOT))

NOTEBOOK_DIR = ROOT / "notebooks"


def execute(path: str | Path, timeout: int = 7200) -> float:
    """Run one notebook in full mode in its own folder; returns the wall seconds."""
    import nbformat
    from nbclient import NotebookClient

    from vaeclust_tutorial import __version__
    from vaeclust_tutorial.files import atomic_write_bytes
    from vaeclust_tutorial.runtime import git_commit

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    saved = os.environ.pop("VAECLUST_QUICK", None)
    os.environ["VAECLUST_NO_PROGRESS"] = "1"   # the kernel inherits it: no frozen progress widgets
    t0 = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        os.environ.pop("VAECLUST_NO_PROGRESS")
        if saved is not None:
            os.environ["VAECLUST_QUICK"] = saved
    seconds = time.perf_counter() - t0
    nb.metadata["vaeclust"] = {"mode": "full", "package_version": __version__, "git_commit": git_commit(),
                               "seconds": round(seconds, 1)}
    atomic_write_bytes(path, nbformat.writes(nb).encode())
    return seconds


def timing_table(notebook_dir: str | Path = NOTEBOOK_DIR) -> str:
    """The README's notebook list: title line and full-mode minutes from each notebook's stamp."""
    import nbformat

    lines = ["| notebook | what it covers | full-mode time here |", "|---|---|---|"]
    for path in sorted(Path(notebook_dir).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        title = nb.cells[0].source.splitlines()[0].lstrip("# ").split("·", 1)[-1].strip()
        stamp = nb.metadata.get("vaeclust", {})
        minutes = f"{stamp['seconds'] / 60:.1f} min" if stamp.get("mode") == "full" else "not executed"
        lines.append(f"| [`{path.name}`](notebooks/{path.name}) | {title} | {minutes} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python tools/run_notebooks.py", description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="*", type=Path, help="notebooks to execute (default: all)")
    p.add_argument("--readme", type=Path, help="write the timing table between <!-- notebooks:start/end -->")
    p.add_argument("--no-execute", action="store_true", help="only write the table")
    args = p.parse_args(argv)
    if not args.no_execute:
        for path in args.paths or sorted(NOTEBOOK_DIR.glob("*.ipynb")):
            print(f"executing {path} (full mode) ...", flush=True)
            print(f"  done in {execute(path) / 60:.1f} min", flush=True)
    if args.readme is not None:
        from tools.markers import replace_between_markers
        replace_between_markers(args.readme, "notebooks", timing_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
