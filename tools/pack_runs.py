#!/usr/bin/env python3
"""Carry data to a borrowed GPU machine and runs back, in files small enough for a file transfer.

    python tools/pack_runs.py data --out DIR           # here: both datasets' IDX files, gzipped (~42 MB)
    python tools/pack_runs.py unpack-data DIR          # there: back into data/, each file checked by SHA-256
    python tools/pack_runs.py runs RUN_DIR... --out DIR [--max-mb 15]
                                                       # there: what a sweep made, in archives of <= max-mb
    python tools/pack_runs.py unpack ARCHIVE... --runs-dir runs/gpu
                                                       # here: the runs back, ready for results_tables.py

``runs`` writes ``histories.tar.gz`` (every run's ``history.json``, ``metrics.json`` and log),
``shipped-N.tar`` (each finished run's checkpoint slimmed by ``tools/ship.py``: the model and its
record, a third of the training checkpoint, enough for ``ship.py``'s output and the notebooks)
and ``resume-N.tar`` (the full checkpoints of unfinished runs, which ``train --resume`` carries
on from). ``unpack`` puts them back as ``RUNS/<run>/`` folders: a finished run's slim checkpoint
as ``shipped.pt`` (copy it into ``vaeclust_tutorial/checkpoints/`` to ship it), an unfinished
run's as ``checkpoint.pt``. How a sweep ran this way: docs/reproduction.md, step 10.
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:        # run as `python tools/pack_runs.py`
    sys.path.insert(0, str(ROOT))

from tools import ship  # noqa: E402
from vaeclust_tutorial import data  # noqa: E402
from vaeclust_tutorial.checkpoint import CheckpointError  # noqa: E402

RECORDS = ("history.json", "metrics.json")


def pack_data(out: str | Path, data_dir: str | Path | None = None) -> list[Path]:
    """Gzip every pinned IDX file of every dataset into ``out/<folder>/raw/<file>.gz``."""
    written = []
    for name, info in data.DATASETS.items():
        for filename in info.sha256:
            src = data.raw_dir(name, data_dir) / filename
            if not src.exists():
                raise FileNotFoundError(f"{src} is missing: run `python tasks.py data` first")
            dst = Path(out) / info.folder / "raw" / f"{filename}.gz"
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(gzip.compress(src.read_bytes(), mtime=0))
            written.append(dst)
    return written


def unpack_data(packed: str | Path, data_dir: str | Path | None = None) -> list[Path]:
    """The inverse of :func:`pack_data`, each file verified by its pinned SHA-256 before it is written."""
    written = []
    for name, info in data.DATASETS.items():
        for filename in info.sha256:
            src = Path(packed) / info.folder / "raw" / f"{filename}.gz"
            raw = gzip.decompress(src.read_bytes())
            data.verify_bytes(name, filename, raw, origin=str(src))
            dst = data.raw_dir(name, data_dir) / filename
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(raw)
            written.append(dst)
    return written


def _finished(run: Path) -> bool:
    return (run / "metrics.json").exists()


def _tar_bytes(payload_sizes) -> int:
    """Size of an uncompressed tar of members of these sizes: a 512-byte header and the payload
    padded to 512 bytes each, two closing blocks, the whole padded to tarfile's 10,240 bytes."""
    body = sum(512 + -(-n // 512) * 512 for n in payload_sizes) + 1024
    return -(-body // 10240) * 10240


def _chunks(out: Path, stem: str, members: list[tuple[str, bytes]], max_bytes: int) -> list[Path]:
    """Write ``members`` (name, bytes) into ``stem-1.tar``, ``stem-2.tar``, ... of at most ``max_bytes`` each."""
    archives, batch = [], []
    for name, payload in members:
        if _tar_bytes([len(payload)]) > max_bytes:
            raise ValueError(f"{name} alone is {len(payload) / 1e6:.1f} MB, more than --max-mb allows")
        if _tar_bytes([len(b) for _, b in batch] + [len(payload)]) > max_bytes:
            archives.append(_write_tar(out / f"{stem}-{len(archives) + 1}.tar", batch))
            batch = []
        batch.append((name, payload))
    if batch:
        archives.append(_write_tar(out / f"{stem}-{len(archives) + 1}.tar", batch))
    return archives


def _write_tar(path: Path, members: list[tuple[str, bytes]], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, payload in members:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def pack_runs(run_dirs: list[str | Path], out: str | Path, max_mb: float = 15.0) -> list[Path]:
    """``histories.tar.gz``, ``shipped-N.tar`` and ``resume-N.tar`` in ``out`` (module docstring)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = [Path(r) for r in run_dirs if (Path(r) / "history.json").exists()]
    if not runs:
        raise ValueError(f"no run folder (with a history.json) among {[str(r) for r in run_dirs]}")
    records = [(f"{r.name}/{f}", (r / f).read_bytes()) for r in runs for f in RECORDS if (r / f).exists()]
    records += [(f"{r.name}/run.log", log.read_bytes()) for r in runs
                if (log := r.parent / f"{r.name}.log").exists()]
    archives = [_write_tar(out / "histories.tar.gz", records, "w:gz")]
    shipped, resume = [], []
    for r in runs:
        if _finished(r):
            slim = out / f".{r.name}.pt"
            try:
                ship.ship(r / "checkpoint.pt", slim)
            except CheckpointError as e:        # a quick run, say: its records travel, its model not
                print(f"warning: {r.name}: no slim checkpoint: {e}", file=sys.stderr)
                continue
            shipped.append((f"{r.name}/shipped.pt", slim.read_bytes()))
            slim.unlink()
        elif (r / "checkpoint.pt").exists():
            resume.append((f"{r.name}/checkpoint.pt", (r / "checkpoint.pt").read_bytes()))
    max_bytes = int(max_mb * 1e6)
    return archives + _chunks(out, "shipped", shipped, max_bytes) + _chunks(out, "resume", resume, max_bytes)


def unpack_runs(archives: list[str | Path], runs_dir: str | Path) -> list[Path]:
    """Extract archives made by :func:`pack_runs` into ``runs_dir/<run>/``; returns the run folders."""
    runs_dir = Path(runs_dir)
    found = set()
    for archive in archives:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                parts = Path(member.name).parts
                if not member.isfile() or len(parts) != 2 or ".." in parts:
                    raise ValueError(f"{archive}: {member.name!r} is not a RUN/FILE entry of pack_runs.py")
                dst = runs_dir / member.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(tar.extractfile(member).read())
                found.add(dst.parent)
    return sorted(found)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python tools/pack_runs.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("data", help="gzip both datasets' IDX files into DIR")
    d.add_argument("--out", required=True, type=Path)
    u = sub.add_parser("unpack-data", help="the files of `data` back into data/, checked")
    u.add_argument("packed", type=Path)
    r = sub.add_parser("runs", help="pack run folders into archives of at most --max-mb")
    r.add_argument("run_dirs", nargs="+", type=Path)
    r.add_argument("--out", required=True, type=Path)
    r.add_argument("--max-mb", type=float, default=15.0, help="largest archive, MB (default 15)")
    x = sub.add_parser("unpack", help="archives of `runs` back into run folders")
    x.add_argument("archives", nargs="+", type=Path)
    x.add_argument("--runs-dir", required=True, type=Path)
    args = p.parse_args(argv)
    try:
        if args.command == "data":
            done = pack_data(args.out)
        elif args.command == "unpack-data":
            done = unpack_data(args.packed)
        elif args.command == "runs":
            done = pack_runs(args.run_dirs, args.out, args.max_mb)
        else:
            done = unpack_runs(args.archives, args.runs_dir)
    except (OSError, ValueError, CheckpointError, data.DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for path in done:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
