"""Tests for chainrule.datasets: MNIST-format loading, downloading, caching, small sets.

No test touches the network or the real home cache: every test points the cache at a
temporary folder, and downloads come from local mirrors (file:// URLs or an HTTP server
on 127.0.0.1).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.server
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import chainrule.datasets.mnist_format as mnist_module
from chainrule._progress import showing_progress
from chainrule.datasets import (
    DIGITS_CLASSES,
    FASHION_MNIST_CLASSES,
    LOGIC_GATES,
    MNIST_CLASSES,
    CorruptFileError,
    DatasetNotFoundError,
    DownloadError,
    digits,
    fashion_mnist,
    logic_gate,
    mnist,
    sine,
    spiral,
)
from chainrule.datasets._files import atomic_writer
from chainrule.datasets.download import download_file
from chainrule.datasets.idx import parse_idx, read_idx

# CI clones the repository with shared/ beside it.
MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

needs_mnist = pytest.mark.skipif(
    not (MNIST_DIR / "t10k-labels-idx1-ubyte.gz").is_file(),
    reason=f"real MNIST files not found in {MNIST_DIR}",
)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty cache and no $CHAINRULE_DATA."""
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)
    return cache / "chainrule"


@pytest.fixture(scope="module")
def shared_cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the tests reading real MNIST, so the IDX files are parsed only once."""
    return tmp_path_factory.mktemp("shared-xdg-cache")


@pytest.fixture
def real_mnist(shared_cache_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the cache at the module-wide one; return the folder of the real files."""
    if not (MNIST_DIR / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip(f"real MNIST files not found in {MNIST_DIR}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared_cache_root))
    return MNIST_DIR


def copy_test_split(folder: Path) -> Path:
    """Copy the real (gzipped) test split into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in TEST_FILES:
        shutil.copy(MNIST_DIR / f"{name}.gz", folder / f"{name}.gz")
    return folder


def raw_bytes(name: str) -> bytes:
    return gzip.decompress((MNIST_DIR / f"{name}.gz").read_bytes())


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    """Write ``array`` (uint8) as an IDX file, gzipped when the name ends in .gz."""
    content = magic.to_bytes(4, "big")
    content += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    content += array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(content, compresslevel=1) if path.suffix == ".gz"
                     else content)


def make_fake_test_split(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic 10,000-image split in the MNIST format (stands in for Fashion-MNIST)."""
    rng = np.random.default_rng(0)
    images = np.zeros((10_000, 28, 28), dtype=np.uint8)
    images[:, 10:18, 10:18] = rng.integers(0, 256, size=(10_000, 8, 8), dtype=np.uint8)
    labels = (np.arange(10_000) % 10).astype(np.uint8)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", images, 2051)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels, 2049)
    return images, labels


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


# --------------------------------------------------------------------------- real MNIST
def test_mnist_train_shapes_dtypes_and_label_counts(real_mnist: Path) -> None:
    images, labels = mnist("train", data_dir=real_mnist)
    assert images.shape == (60_000, 784) and images.dtype == np.float32
    assert labels.shape == (60_000,) and labels.dtype == np.int64
    assert images.min() == 0.0 and images.max() == 1.0
    assert np.bincount(labels).tolist() == TRAIN_COUNTS


def test_mnist_test_split_label_counts(real_mnist: Path) -> None:
    images, labels = mnist("test", data_dir=real_mnist)
    assert images.shape == (10_000, 784)
    assert np.bincount(labels).tolist() == TEST_COUNTS


def test_mnist_variants(real_mnist: Path) -> None:
    normalised, labels = mnist("test", data_dir=real_mnist)
    raw, _ = mnist("test", normalize=False, data_dir=real_mnist)
    assert raw.dtype == np.uint8 and raw.shape == (10_000, 784) and raw.max() == 255
    np.testing.assert_allclose(normalised * 255, raw, atol=1e-4)

    square, _ = mnist("test", flatten=False, data_dir=real_mnist)
    assert square.shape == (10_000, 1, 28, 28) and square.dtype == np.float32
    np.testing.assert_array_equal(square.reshape(10_000, 784), normalised)

    _, one_hot = mnist("test", one_hot=True, data_dir=real_mnist)
    assert one_hot.shape == (10_000, 10) and one_hot.dtype == np.float32
    np.testing.assert_array_equal(one_hot.sum(axis=1), 1.0)
    np.testing.assert_array_equal(one_hot.argmax(axis=1), labels)


def test_mnist_bad_split(real_mnist: Path) -> None:
    with pytest.raises(ValueError, match=r"'train' or 'test'.*'validation'"):
        mnist("validation", data_dir=real_mnist)


def test_chainrule_data_env_folder_or_its_mnist_subfolder(
        real_mnist: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for folder in (real_mnist, real_mnist.parent):  # the folder itself, or <folder>/mnist
        monkeypatch.setenv("CHAINRULE_DATA", str(folder))
        _, labels = mnist("test", download=False)
        assert np.bincount(labels).tolist() == TEST_COUNTS


def test_reload_comes_from_the_parsed_cache(real_mnist: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """After the first load, the arrays come from the .npz cache: the IDX files are not
    parsed (or checksummed) again. (How fast that is: benchmarks/bench_data.py.)"""
    first = mnist("test", data_dir=real_mnist)

    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("the IDX files were parsed again")

    monkeypatch.setattr("chainrule.datasets.mnist_format.read_idx", no_parsing)
    again = mnist("test", data_dir=real_mnist)
    np.testing.assert_array_equal(again[0], first[0])
    np.testing.assert_array_equal(again[1], first[1])


def test_npz_cache_is_keyed_by_source(tmp_path: Path, isolated_cache: Path) -> None:
    if not MNIST_DIR.is_dir():
        pytest.skip(f"real MNIST files not found in {MNIST_DIR}")
    """Another folder's files are parsed (and checked) afresh, never taken for the
    cached ones; the newer parsed copy replaces the older one, so the cache holds one
    copy per split however many folders were read (55 MB each for the training set)."""
    first = copy_test_split(tmp_path / "a")
    second = copy_test_split(tmp_path / "b")
    images, _ = mnist("test", data_dir=first)
    (copy_a,) = (isolated_cache / "mnist").glob("test-*.npz")
    mnist("test", data_dir=second)
    (copy_b,) = (isolated_cache / "mnist").glob("test-*.npz")
    assert copy_b != copy_a  # keyed by source: a new key, and the old copy pruned
    again, _ = mnist("test", data_dir=first)
    np.testing.assert_array_equal(again, images)
    assert len(list((isolated_cache / "mnist").glob("test-*.npz"))) == 1
    assert not list((isolated_cache / "mnist").glob(".*.tmp"))


@needs_mnist
def test_damaged_npz_cache_is_rebuilt(tmp_path: Path, isolated_cache: Path) -> None:
    folder = copy_test_split(tmp_path / "src")
    _, expected = mnist("test", data_dir=folder)
    (npz,) = (isolated_cache / "mnist").glob("test-*.npz")
    npz.write_bytes(b"not a zip file")
    _, labels = mnist("test", data_dir=folder)
    np.testing.assert_array_equal(labels, expected)


@needs_mnist
def test_file_changed_after_caching_is_checked_again(tmp_path: Path) -> None:
    folder = copy_test_split(tmp_path / "src")
    mnist("test", data_dir=folder)  # builds the .npz from the good file
    raw = bytearray(raw_bytes("t10k-labels-idx1-ubyte"))
    raw[100] = (raw[100] + 1) % 10
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(CorruptFileError, match="SHA-256"):
        mnist("test", data_dir=folder)


# --------------------------------------------------------------------------- missing files
def test_missing_files_message(tmp_path: Path, isolated_cache: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = tmp_path / "env"
    monkeypatch.setenv("CHAINRULE_DATA", str(env))
    with pytest.raises(DatasetNotFoundError) as info:
        mnist("train", data_dir=empty, download=False)
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    for expected in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", str(empty),
                     str(env), str(env / "mnist"), str(isolated_cache / "mnist"),
                     "data_dir=", "CHAINRULE_DATA", "download=True"):
        assert expected in message


def test_offline_download_failure_is_reported(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    nowhere = (tmp_path / "no-such-mirror").as_uri() + "/"
    monkeypatch.setattr(mnist_module, "MNIST",
                        dataclasses.replace(mnist_module.MNIST, mirrors=(nowhere,)))
    with pytest.raises(DatasetNotFoundError, match=r"(?s)Downloading failed.*no-such-mirror"):
        mnist("test")


# --------------------------------------------------------------------------- corrupt files
def corrupt_copy(tmp_path: Path, name: str, content: bytes, gz: bool) -> Path:
    """The real test split in a folder, with file ``name`` replaced by ``content``."""
    folder = copy_test_split(tmp_path / "corrupt")
    (folder / f"{name}.gz").unlink()
    target = folder / (f"{name}.gz" if gz else name)
    target.write_bytes(content)
    return target


@needs_mnist
@pytest.mark.parametrize(
    ("case", "problem"),
    [
        ("truncated-gzip", "truncated"),
        ("garbage-gzip", "gzip"),
        ("not-gzip", "not a gzip file"),
        ("wrong-magic", "wrong magic number 2051"),
        ("extra-bytes", "size is"),
        ("truncated-raw", "size is"),
        ("wrong-count", "shape"),
        ("modified-byte", "SHA-256"),
    ],
)
def test_corrupt_labels_file(tmp_path: Path, case: str, problem: str) -> None:
    name = "t10k-labels-idx1-ubyte"
    raw = raw_bytes(name)
    packed = (MNIST_DIR / f"{name}.gz").read_bytes()
    if case == "truncated-gzip":
        content, gz = packed[: len(packed) // 2], True
    elif case == "garbage-gzip":
        content, gz = packed[:10] + b"\xff" * 200, True
    elif case == "not-gzip":
        content, gz = raw, True  # raw bytes under a .gz name
    elif case == "wrong-magic":
        content, gz = (2051).to_bytes(4, "big") + raw[4:], False
    elif case == "extra-bytes":
        content, gz = raw + b"\x00", False
    elif case == "truncated-raw":
        content, gz = raw[:-100], False
    elif case == "wrong-count":  # a consistent file, but 9,999 labels instead of 10,000
        content, gz = raw[:4] + (9999).to_bytes(4, "big") + raw[8:-1], False
    else:
        modified = bytearray(raw)
        modified[500] = (modified[500] + 1) % 10
        content, gz = bytes(modified), False
    path = corrupt_copy(tmp_path, name, content, gz)

    with pytest.raises(CorruptFileError) as info:
        mnist("test", data_dir=path.parent, download=False)
    message = str(info.value)
    assert str(path) in message and problem in message and "delete it" in message


@needs_mnist
def test_corrupt_images_file_is_named(tmp_path: Path) -> None:
    name = "t10k-images-idx3-ubyte"
    raw = bytearray(raw_bytes(name))
    raw[20_000] ^= 0xFF
    path = corrupt_copy(tmp_path, name, gzip.compress(bytes(raw), compresslevel=1), gz=True)
    with pytest.raises(CorruptFileError, match=r"SHA-256") as info:
        mnist("test", data_dir=path.parent)
    assert info.value.path == path
    assert not list(Path(path.parent).glob("*.npz"))


def test_read_idx_other_dtypes_and_ndim(tmp_path: Path) -> None:
    values = np.array([[1, -2, 3], [400000, 5, -6]], dtype=">i4")
    content = bytes([0, 0, 0x0C, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    path = tmp_path / "ints-idx2-int"
    path.write_bytes(content + values.tobytes())
    array = read_idx(path, expected_shape=(2, 3))
    assert array.dtype == np.int32 and array.dtype.isnative
    np.testing.assert_array_equal(array, values)
    with pytest.raises(CorruptFileError, match="not a valid IDX header"):
        parse_idx(bytes([0, 0, 0x42, 1, 0, 0, 0, 0]))


# --------------------------------------------------------------------------- downloading
def serve_mirror(tmp_path: Path) -> tuple[Path, str]:
    """A folder with the real test split, as a file:// mirror URL (gzipped files only)."""
    folder = copy_test_split(tmp_path / "mirror")
    return folder, folder.as_uri() + "/"


@needs_mnist
def test_download_from_local_mirror_then_load(tmp_path: Path, isolated_cache: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    mirror, url = serve_mirror(tmp_path)
    dead = (tmp_path / "dead-mirror").as_uri() + "/"
    # The local copies were re-compressed, so they have their own MD5s.
    local_md5 = {f"{n}.gz": md5_of(mirror / f"{n}.gz") for n in TEST_FILES}
    spec = dataclasses.replace(mnist_module.MNIST, mirrors=(dead, url),
                               md5={**mnist_module.MNIST.md5, **local_md5})
    monkeypatch.setattr(mnist_module, "MNIST", spec)

    images, labels = mnist("test")  # nothing anywhere: downloads via the second mirror
    assert images.shape == (10_000, 784)
    assert np.bincount(labels).tolist() == TEST_COUNTS
    cached = isolated_cache / "mnist"
    for name in TEST_FILES:
        assert (cached / f"{name}.gz").read_bytes() == (mirror / f"{name}.gz").read_bytes()
    assert not list(cached.glob(".*"))  # no temporary files left behind


@needs_mnist
def test_download_md5_mismatch_leaves_no_file(tmp_path: Path) -> None:
    _, url = serve_mirror(tmp_path)
    target = tmp_path / "target"
    published = mnist_module.MNIST.md5["t10k-labels-idx1-ubyte.gz"]
    with pytest.raises(DownloadError, match=r"MD5 mismatch.*" + published):
        download_file("t10k-labels-idx1-ubyte.gz", [url], published, target, quiet=True)
    assert list(target.iterdir()) == []


def test_atomic_writer_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "file.bin"
    target.write_bytes(b"old, complete")
    with pytest.raises(RuntimeError), atomic_writer(target) as out:
        out.write(b"half of the new")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old, complete"
    assert list(tmp_path.iterdir()) == [target]
    with atomic_writer(target) as out:
        out.write(b"new")
    assert target.read_bytes() == b"new" and list(tmp_path.iterdir()) == [target]


@pytest.fixture
def http_mirror(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """An HTTP server on 127.0.0.1 serving ``tmp_path/www``; /broken/* drops the line."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def do_GET(self) -> None:  # noqa: N802 - name fixed by http.server
            if self.path.startswith("/broken/"):
                # Promise a megabyte, send a few bytes, hang up: a cut connection.
                self.send_response(200)
                self.send_header("Content-Length", str(1 << 20))
                self.end_headers()
                self.wfile.write(b"\x1f\x8b partial")
                self.close_connection = True
                return
            super().do_GET()

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_http_download_skips_broken_and_missing_mirrors(
        http_mirror: tuple[Path, str], tmp_path: Path) -> None:
    root, base = http_mirror
    payload = gzip.compress(b"some bytes standing in for a dataset file")
    (root / "good").mkdir()
    (root / "good" / "file.gz").write_bytes(payload)
    md5 = hashlib.md5(payload, usedforsecurity=False).hexdigest()
    target = tmp_path / "target"

    # Every mirror fails: the error lists each one, and nothing is left behind.
    with pytest.raises(DownloadError) as info:
        download_file("file.gz", [f"{base}/broken/", f"{base}/missing/"], md5, target,
                      timeout=5, quiet=True)
    assert "broken" in str(info.value) and "404" in str(info.value)
    assert not target.exists() or list(target.iterdir()) == []

    path = download_file("file.gz", [f"{base}/broken/", f"{base}/missing/", f"{base}/good/"],
                         md5, target, timeout=5, quiet=True)
    assert path == target / "file.gz" and path.read_bytes() == payload
    assert list(target.iterdir()) == [path]


# --------------------------------------------------------------------------- Fashion-MNIST
def test_fashion_mnist_same_loader_own_folders(tmp_path: Path, isolated_cache: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    images, labels = make_fake_test_split(tmp_path / "data" / "fashion-mnist")
    # files found on disk are checked against the published MD5s: publish the fakes'
    folder = tmp_path / "data" / "fashion-mnist"
    monkeypatch.setattr(mnist_module, "FASHION_MNIST", dataclasses.replace(
        mnist_module.FASHION_MNIST, md5={f"{n}.gz": md5_of(folder / f"{n}.gz")
                                         for n in TEST_FILES}))
    X, y = fashion_mnist("test", normalize=False, flatten=False,
                         data_dir=tmp_path / "data" / "fashion-mnist")
    assert X.shape == (10_000, 1, 28, 28) and X.dtype == np.uint8
    np.testing.assert_array_equal(X[:, 0], images)
    np.testing.assert_array_equal(y, labels)
    assert list((isolated_cache / "fashion-mnist").glob("test-*.npz"))

    # $CHAINRULE_DATA is searched in its fashion-mnist/ subfolder ...
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "data"))
    _, y_env = fashion_mnist("test", download=False)
    np.testing.assert_array_equal(y_env, labels)


def test_fashion_mnist_does_not_pick_up_mnist_from_chainrule_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ... but not in the folder itself, where MNIST (same file names) may live.
    make_fake_test_split(tmp_path / "data")
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "data"))
    with pytest.raises(DatasetNotFoundError, match="fashion-mnist"):
        fashion_mnist("test", download=False)


def test_fashion_mnist_download(tmp_path: Path, isolated_cache: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = tmp_path / "mirror"
    _, labels = make_fake_test_split(mirror)
    md5 = {f"{n}.gz": md5_of(mirror / f"{n}.gz") for n in TEST_FILES}
    spec = dataclasses.replace(mnist_module.FASHION_MNIST, mirrors=(mirror.as_uri(),),
                               md5={**mnist_module.FASHION_MNIST.md5, **md5})
    monkeypatch.setattr(mnist_module, "FASHION_MNIST", spec)
    _, y = fashion_mnist("test", one_hot=True)
    np.testing.assert_array_equal(y.argmax(axis=1), labels)
    assert (isolated_cache / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").is_file()


def test_class_names() -> None:
    assert FASHION_MNIST_CLASSES == (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    )
    assert MNIST_CLASSES == DIGITS_CLASSES == tuple("0123456789")
    assert mnist_module.FASHION_MNIST.raw_sha256 is None


# --------------------------------------------------------------------------- digits
def test_digits_full_set() -> None:
    images, labels = digits()
    assert images.shape == (1797, 64) and images.dtype == np.float32
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert images.min() == 0.0 and images.max() == 1.0
    assert set(labels.tolist()) == set(range(10))


def test_digits_variants() -> None:
    raw, _ = digits(normalize=False, flatten=False)
    assert raw.shape == (1797, 1, 8, 8) and raw.dtype == np.uint8 and raw.max() == 16
    _, one_hot = digits(one_hot=True)
    assert one_hot.shape == (1797, 10) and one_hot.dtype == np.float32


def test_digits_stratified_deterministic_split() -> None:
    X_train, y_train = digits("train")
    X_test, y_test = digits("test")
    assert len(y_train) + len(y_test) == 1797
    assert len(y_test) == round(0.2 * 1797)
    # Every digit keeps its share (within one sample) on the test side.
    _, all_labels = digits()
    expected = np.bincount(all_labels) * len(y_test) / 1797
    assert np.all(np.abs(np.bincount(y_test) - expected) < 1)
    np.testing.assert_array_equal(digits("test")[0], X_test)
    assert not np.array_equal(digits("test", seed=1)[1], y_test)
    with pytest.raises(ValueError, match="'validation'"):
        digits("validation")


def test_importing_datasets_does_not_import_sklearn() -> None:
    code = "import sys, chainrule.datasets; print('sklearn' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).resolve().parents[1])
    assert result.stdout.strip() == "False"


# --------------------------------------------------------------------------- synthetic
def test_logic_gates() -> None:
    X, y = logic_gate("XOR")
    assert X.shape == (4, 2) and X.dtype == np.float32
    assert y.shape == (4, 1) and y.dtype == np.float32
    assert y.ravel().tolist() == [0, 1, 1, 0]
    for name, table in LOGIC_GATES.items():
        X, y = logic_gate(name)
        a, b = X[:, 0].astype(bool), X[:, 1].astype(bool)
        truth = {"and": a & b, "or": a | b, "nand": ~(a & b), "xor": a ^ b}[name]
        assert y.ravel().tolist() == truth.astype(float).tolist() == list(table)
    with pytest.raises(ValueError, match=r"'nor'.*and, or, nand, xor"):
        logic_gate("nor")


def test_spiral() -> None:
    X, y = spiral(n_per_class=50, classes=4, seed=1)
    assert X.shape == (200, 2) and X.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [50] * 4
    assert np.all(np.linalg.norm(X, axis=1) <= 1.0 + 1e-6)
    np.testing.assert_array_equal(spiral(50, 4, seed=1)[0], X)
    assert not np.array_equal(spiral(50, 4, seed=2)[0], X)
    with pytest.raises(ValueError, match="n_per_class"):
        spiral(n_per_class=0)


def test_sine() -> None:
    x, y = sine(n=100, noise=0.0)
    assert x.shape == (100, 1) and y.shape == (100, 1)
    assert x.dtype == np.float32 and y.dtype == np.float32
    assert x.min() == pytest.approx(-np.pi) and x.max() == pytest.approx(np.pi)
    np.testing.assert_allclose(y, np.sin(x), atol=1e-6)
    _, noisy = sine(n=100, noise=0.1, seed=0)
    assert 0.05 < np.std(noisy - np.sin(x)) < 0.15
    with pytest.raises(ValueError, match="noise"):
        sine(noise=-1)


# --------------------------------------------------------------------------- progress
@needs_mnist
def test_the_first_read_of_a_split_shows_a_bar_the_cached_one_none(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Checking and parsing the IDX files shows a bar (when bars show: a terminal, or
    --progress); loading the parsed copy afterwards is quick and shows none."""
    with showing_progress(True):
        mnist("test", data_dir=MNIST_DIR)
        first = capsys.readouterr().err
        mnist("test", data_dir=MNIST_DIR)
        again = capsys.readouterr().err
    assert "checking MNIST test" in first and "%|" in first, first
    assert again == ""


def test_a_download_shows_its_bytes_unless_quiet(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    content = np.random.default_rng(0).bytes(300_000)
    (mirror / "data.bin").write_bytes(content)
    md5 = hashlib.md5(content).hexdigest()
    with showing_progress(True):
        download_file("data.bin", [mirror.as_uri()], md5, tmp_path / "shown")
        shown = capsys.readouterr().err
        download_file("data.bin", [mirror.as_uri()], md5, tmp_path / "quiet", quiet=True)
        quiet = capsys.readouterr().err
    download_file("data.bin", [mirror.as_uri()], md5, tmp_path / "piped")
    piped = capsys.readouterr().err  # stderr is not a terminal here
    assert "data.bin" in shown and "%|" in shown and "300k" in shown, shown  # 300kB
    assert (tmp_path / "shown" / "data.bin").read_bytes() == content
    assert "%|" not in quiet and "%|" not in piped
