"""What the loaders check: published sha256, content, and damaged files."""

import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import urllib.request
import zipfile

import numpy as np
import pytest

from anysma import datasets
from anysma.datasets import DamagedFileError
from anysma.datasets import _files
from anysma.datasets import _idx
from anysma.datasets import affnist
from anysma.datasets import cifar10
from anysma.datasets import fashion_mnist
from anysma.datasets import mnist
from anysma.datasets import smallnorb
from anysma.datasets import tecator
from anysma.testing.datasets import write_affnist
from anysma.testing.datasets import write_cifar10
from anysma.testing.datasets import write_mnist_idx
from anysma.testing.datasets import write_smallnorb
from anysma.utils import downloads

MNIST_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def save_npz(path, compressed=False, **arrays):
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


def small_npz(path, **overrides):
    arrays = {
        "x_train": np.zeros((4, 28, 28), np.uint8),
        "y_train": np.array([0, 1, 2, 3], np.uint8),
        "x_test": np.zeros((2, 28, 28), np.uint8),
        "y_test": np.array([4, 5], np.uint8),
    }
    arrays.update(overrides)
    return save_npz(path, **arrays)


def full_size_npz(path, train_counts, test_counts):
    """A 60,000 / 10,000 npz (all-black images) with the given class counts."""
    y_train = np.repeat(np.arange(10, dtype=np.uint8), train_counts)
    y_test = np.repeat(np.arange(10, dtype=np.uint8), test_counts)
    return save_npz(
        path,
        compressed=True,
        x_train=np.zeros((len(y_train), 28, 28), np.uint8),
        y_train=y_train,
        x_test=np.zeros((len(y_test), 28, 28), np.uint8),
        y_test=y_test,
    )


def idx_bytes(array, type_code):
    array = np.asarray(array)
    header = bytes([0, 0, type_code, array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    dtype = {0x08: ">u1", 0x0C: ">i4"}[type_code]
    return header + array.astype(dtype).tobytes()


def assert_names_damaged_file(error, path):
    message = str(error)
    assert str(path) in message
    assert "damaged" in message
    assert "\n" not in message


# --- The exception ----------------------------------------------------------


def test_damaged_file_error_is_a_value_error_exported_by_the_package():
    assert datasets.DamagedFileError is _files.DamagedFileError
    assert "DamagedFileError" in datasets.__all__
    error = DamagedFileError("/d/mnist.npz", "it is truncated", "Get a new one.")
    assert isinstance(error, ValueError)
    assert (error.path, error.problem, error.remedy) == (
        "/d/mnist.npz",
        "it is truncated",
        "Get a new one.",
    )
    assert str(error) == (
        "/d/mnist.npz: it is truncated. The file is damaged or not the expected "
        "one. Get a new one."
    )
    # The path is not repeated when the problem names it already.
    assert str(DamagedFileError("/d/a", "/d/a is short")).startswith("/d/a is short.")
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and copy.path == error.path


# --- Item 4: content checks -------------------------------------------------


def test_idx_labels_outside_uint8_are_an_error_not_a_wrap(tmp_path):
    write_mnist_idx(str(tmp_path), num_train=4, num_test=2)
    path = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    # int32 labels: 300 would become 44 when cast to uint8.
    path.write_bytes(gzip.compress(idx_bytes([1, 300, 2, 3], 0x0C)))
    with pytest.raises(DamagedFileError, match=r"0-9.*300") as info:
        mnist.load_data(data_dir=str(tmp_path), download=False)
    assert info.value.path == str(path)


@pytest.mark.parametrize("bad", [10, 255])
def test_labels_outside_the_classes_are_rejected(tmp_path, bad):
    small_npz(tmp_path / "mnist.npz", y_test=np.array([4, bad], np.uint8))
    with pytest.raises(DamagedFileError, match=f"labels must lie in 0-9.*{bad}"):
        mnist.load_data(data_dir=str(tmp_path), download=False)


def test_negative_and_float_labels_are_rejected(tmp_path):
    small_npz(tmp_path / "mnist.npz", y_train=np.array([0, -1, 2, 3]))
    with pytest.raises(DamagedFileError, match="-1"):
        mnist.load_data(data_dir=str(tmp_path), download=False)
    small_npz(tmp_path / "mnist.npz", y_train=np.array([0.0, 1.0, 2.0, 3.0]))
    with pytest.raises(DamagedFileError, match="integers.*float64"):
        mnist.load_data(data_dir=str(tmp_path), download=False)


def test_pixels_must_be_integers_0_to_255(tmp_path):
    images = np.zeros((4, 28, 28), np.int32)
    images[0, 0, 0] = 256
    small_npz(tmp_path / "mnist.npz", x_train=images)
    with pytest.raises(DamagedFileError, match="0-255.*256"):
        mnist.load_data(data_dir=str(tmp_path), download=False)
    small_npz(tmp_path / "mnist.npz", x_train=np.zeros((4, 28, 28), np.float32))
    with pytest.raises(DamagedFileError, match="float32"):
        mnist.load_data(data_dir=str(tmp_path), download=False)


def test_wider_integer_arrays_in_range_still_load(tmp_path):
    small_npz(tmp_path / "fashion_mnist.npz", y_train=np.array([0, 1, 2, 9]))
    (x_train, y_train), _ = fashion_mnist.load_data(
        data_dir=str(tmp_path), download=False
    )
    assert y_train.dtype == np.uint8 and y_train.tolist() == [0, 1, 2, 9]
    assert x_train.dtype == np.uint8


def test_fashion_mnist_renamed_to_mnist_is_rejected_by_its_class_counts(tmp_path):
    # All 70,000 images with Fashion-MNIST's 6,000 / 1,000 per class.
    full_size_npz(tmp_path / "mnist.npz", [6000] * 10, [1000] * 10)
    with pytest.raises(DamagedFileError, match="holds Fashion-MNIST, not MNIST"):
        mnist.load_data(data_dir=str(tmp_path), download=False)


def test_mnist_renamed_to_fashion_mnist_is_rejected_by_its_class_counts(tmp_path):
    train, test = _idx.OFFICIAL_CLASS_COUNTS["MNIST"]
    full_size_npz(tmp_path / "fashion_mnist.npz", train, test)
    with pytest.raises(DamagedFileError, match="holds MNIST, not Fashion-MNIST"):
        fashion_mnist.load_data(data_dir=str(tmp_path), download=False)


def test_full_size_with_other_class_counts_is_rejected(tmp_path):
    full_size_npz(tmp_path / "mnist.npz", [5999] + [6000] * 8 + [6001], [1000] * 10)
    with pytest.raises(DamagedFileError, match="official counts are"):
        mnist.load_data(data_dir=str(tmp_path), download=False)


def test_real_fashion_mnist_renamed_to_mnist_is_rejected(tmp_path, shared_data):
    os.symlink(shared_data("fashion_mnist.npz"), tmp_path / "mnist.npz")
    with pytest.raises(DamagedFileError, match="Fashion-MNIST") as info:
        mnist.load_data(data_dir=str(tmp_path), download=False)
    assert_names_damaged_file(info.value, tmp_path / "mnist.npz")


def test_real_mnist_renamed_to_fashion_mnist_is_rejected(tmp_path, shared_data):
    os.symlink(shared_data("mnist.npz"), tmp_path / "fashion_mnist.npz")
    with pytest.raises(DamagedFileError, match="holds MNIST, not Fashion-MNIST"):
        fashion_mnist.load_data(data_dir=str(tmp_path), download=False)


def test_published_hashes_of_mnist_and_fashion_mnist_differ():
    mnist_digests = {known.sha256 for known in mnist.SPEC.known_files}
    fashion_digests = {known.sha256 for known in fashion_mnist.SPEC.known_files}
    assert not mnist_digests & fashion_digests
    # Keras' mnist.npz is published; Fashion-MNIST has no published npz.
    assert mnist.KERAS_NPZ in mnist.SPEC.published
    assert mnist.KERAS_NPZ.sha256.startswith("731c5ac6")
    assert fashion_mnist.SPEC.published == ()


def test_a_file_with_another_datasets_published_digest_is_rejected(
    tmp_path, monkeypatch
):
    # Pretend the small file below were Fashion-MNIST's published npz.
    fashion = small_npz(tmp_path / "fashion.npz")
    data = fashion.read_bytes()
    published = _files.RemoteFile(
        "fashion_mnist.npz",
        "https://example.org/fashion_mnist.npz",
        hashlib.sha256(data).hexdigest(),
        len(data),
    )
    monkeypatch.setattr(
        fashion_mnist,
        "SPEC",
        dataclasses.replace(fashion_mnist.SPEC, published=(published,)),
    )
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fashion_mnist.npz").write_bytes(data)
    fashion_mnist.load_data(data_dir=str(tmp_path / "data"), download=False)
    # The same bytes named as MNIST's file are refused.
    (tmp_path / "data" / "mnist.npz").write_bytes(data)
    with pytest.raises(DamagedFileError) as info:
        mnist.load_data(data_dir=str(tmp_path / "data"), download=False)
    message = str(info.value)
    assert "is that of Fashion-MNIST's fashion_mnist.npz, not of MNIST's mnist.npz" in (
        message
    )
    assert_names_damaged_file(info.value, tmp_path / "data" / "mnist.npz")


def test_a_file_of_the_published_size_with_another_digest_is_damaged(tmp_path):
    # The uncompressed labels of 4,534 test images are exactly as long as the
    # published t10k-labels-idx1-ubyte.gz (4,542 bytes) and decode fine.
    write_mnist_idx(str(tmp_path), num_train=10, num_test=4534)
    path = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.decompress(path.read_bytes()))
    assert path.stat().st_size == 4542
    with pytest.raises(DamagedFileError, match="size of the published") as info:
        mnist.load_data(data_dir=str(tmp_path), download=False)
    assert_names_damaged_file(info.value, path)
    assert "f7ae60f92e00ec6d" in str(info.value)  # the published digest


def test_a_file_matching_its_published_digest_is_verified(tmp_path):
    data = b"the genuine bytes"
    remote = _files.RemoteFile(
        "a.bin", (tmp_path / "a.bin").as_uri(), hashlib.sha256(data).hexdigest(), 17
    )
    spec = _files.DatasetSpec(
        "toy",
        "Toy",
        "https://example.org",
        (remote,),
        (_files.Layout((("a.bin",),), True),),
    )
    (tmp_path / "a.bin").write_bytes(data)
    assert _files.verify_published(spec, str(tmp_path / "a.bin")) is True
    (tmp_path / "a.bin").write_bytes(b"other bytes, other size")
    assert _files.verify_published(spec, str(tmp_path / "a.bin")) is None


def test_file_digests_are_cached_per_path_size_and_mtime(tmp_path, monkeypatch):
    calls = []
    original = _files.file_sha256

    def counting(path):
        calls.append(path)
        return original(path)

    monkeypatch.setattr(downloads, "file_sha256", counting)
    path = tmp_path / "f.bin"
    path.write_bytes(b"one")
    first = _files.cached_file_sha256(str(path))
    assert _files.cached_file_sha256(str(path)) == first
    assert len(calls) == 1
    path.write_bytes(b"three")  # another size (and mtime): hashed again
    assert _files.cached_file_sha256(str(path)) == hashlib.sha256(b"three").hexdigest()
    assert len(calls) == 2


def test_cifar_labels_and_pixels_out_of_range_are_errors():
    pixels = np.zeros((2, 3072), np.uint8)
    payload = pickle.dumps({b"data": pixels, b"labels": [3, 300]}, protocol=4)
    with pytest.raises(ValueError, match=r"'labels' must lie in 0-9.*300"):
        cifar10.unpickle_batch(payload)
    wide = np.zeros((2, 3072), np.int64)
    wide[1, 5] = 300
    payload = pickle.dumps({b"data": wide, b"labels": [3, 4]}, protocol=4)
    with pytest.raises(ValueError, match=r"'data' must lie in 0-255.*300"):
        cifar10.unpickle_batch(payload)


def test_cifar_batch_with_bad_labels_names_its_file(tmp_path):
    write_cifar10(str(tmp_path / "packed"), num_train=10, num_test=4)
    with tarfile.open(tmp_path / "packed" / "cifar10" / "cifar-10-python.tar.gz") as t:
        t.extractall(tmp_path / "plain", filter="data")
    batch = tmp_path / "plain" / "cifar-10-batches-py" / "test_batch"
    payload = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 10]}
    batch.write_bytes(pickle.dumps(payload, protocol=4))
    with pytest.raises(DamagedFileError, match="0-9") as info:
        cifar10.load_data(data_dir=str(tmp_path / "plain"), download=False)
    assert info.value.path == str(batch)


def test_affnist_labels_out_of_range(tmp_path):
    from scipy.io import savemat

    buffer = io.BytesIO()
    savemat(
        buffer,
        {
            "affNISTdata": {
                "image": np.zeros((1600, 2), np.uint8),
                "label_int": np.array([[3, 12]], np.uint8),
            }
        },
        format="5",
    )
    (tmp_path / "test.mat").write_bytes(buffer.getvalue())
    with pytest.raises(DamagedFileError, match=r"label_int' must lie in 0-9.*12"):
        affnist.load_data(data_dir=str(tmp_path), download=False)


def test_smallnorb_labels_and_info_are_checked(tmp_path):
    write_smallnorb(str(tmp_path), num_train=4, num_test=2)
    name = "smallnorb-5x01235x9x18x6x2x96x96-testing-cat.mat.gz"
    header = struct.pack("<5i", 0x1E3D4C54, 1, 2, 1, 1)
    path = tmp_path / "smallnorb" / name
    path.write_bytes(gzip.compress(header + np.array([1, 7], "<i4").tobytes()))
    with pytest.raises(DamagedFileError, match=r"labels must lie in 0-4.*7") as info:
        smallnorb.load_data(data_dir=str(tmp_path), download=False)
    assert info.value.path == str(path)

    arrays = {}
    for split, count in (("train", 3), ("test", 2)):
        arrays[f"x_{split}"] = np.zeros((count, 96, 96, 2), np.uint8)
        arrays[f"y_{split}"] = np.zeros(count, np.uint8)
        arrays[f"info_{split}"] = np.zeros((count, 4), np.int64)
    arrays["info_test"][1, 2] = -2
    (tmp_path / "npz").mkdir()
    np.savez(tmp_path / "npz" / "smallnorb.npz", **arrays)
    with pytest.raises(DamagedFileError, match="info must lie in"):
        smallnorb.load_data(data_dir=str(tmp_path / "npz"), download=False)


def test_tecator_content_is_checked(tmp_path, monkeypatch):
    path = tmp_path / "tecator.npz"
    np.savez(path, absorp=np.zeros((215, 99)), endpoints=np.zeros((215, 3)))
    monkeypatch.setattr(tecator, "_path", lambda: str(path))
    with pytest.raises(DamagedFileError, match=r"\(215, 100\)"):
        tecator.load_arrays(verify=False)
    endpoints = np.zeros((215, 3))
    endpoints[3, 1] = np.nan
    np.savez(path, absorp=np.zeros((215, 100)), endpoints=endpoints)
    with pytest.raises(DamagedFileError, match="not finite"):
        tecator.load_arrays(verify=False)


# --- Item 9: damaged files name their path ------------------------------------


def test_truncated_mnist_npz(tmp_path):
    path = small_npz(tmp_path / "mnist.npz")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DamagedFileError) as info:
        mnist.load_data(data_dir=str(tmp_path), download=False)
    assert_names_damaged_file(info.value, path)
    # How to get a good copy: the official files and where they go.
    assert mnist.SPEC.remote_files[0].url in str(info.value)


def test_corrupted_compressed_mnist_npz(tmp_path):
    path = tmp_path / "mnist.npz"
    rng = np.random.default_rng(0)
    small_npz(path, x_train=rng.integers(0, 256, (4, 28, 28), dtype=np.uint8))
    save_npz(
        path,
        compressed=True,
        **dict(zip(MNIST_NPZ_KEYS, _files.read_npz(str(path), MNIST_NPZ_KEYS))),
    )
    data = bytearray(path.read_bytes())
    for offset in range(200, 600):  # inside the first member's deflate stream
        data[offset] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedFileError) as info:
        mnist.load_data(data_dir=str(tmp_path), download=False)
    assert_names_damaged_file(info.value, path)


def test_npz_that_is_a_single_array(tmp_path):
    path = tmp_path / "mnist.npz"
    with open(path, "wb") as stream:
        np.save(stream, np.zeros(3))
    with pytest.raises(DamagedFileError, match="single .npy array"):
        mnist.load_data(data_dir=str(tmp_path), download=False)


def test_empty_npz(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"")
    with pytest.raises(DamagedFileError) as info:
        mnist.load_data(data_dir=str(tmp_path), download=False)
    assert_names_damaged_file(info.value, tmp_path / "mnist.npz")


def test_corrupted_gzip_stream_of_an_idx_file(tmp_path):
    write_mnist_idx(str(tmp_path), num_train=20, num_test=4)
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    data = bytearray(path.read_bytes())
    for offset in range(30, len(data) - 30):
        data[offset] ^= 0xFF  # zlib.error in the old loader
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedFileError) as info:
        mnist.load_data(data_dir=str(tmp_path), download=False)
    assert_names_damaged_file(info.value, path)


def test_truncated_pickle_in_extracted_cifar_folder(tmp_path):
    write_cifar10(str(tmp_path / "packed"), num_train=10, num_test=4)
    with tarfile.open(tmp_path / "packed" / "cifar10" / "cifar-10-python.tar.gz") as t:
        t.extractall(tmp_path / "plain", filter="data")
    batch = tmp_path / "plain" / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:50])
    with pytest.raises(DamagedFileError) as info:
        cifar10.load_data(data_dir=str(tmp_path / "plain"), download=False)
    assert_names_damaged_file(info.value, batch)
    assert cifar10.SPEC.remote_files[0].url in str(info.value)


def test_unsafe_pickle_in_a_cifar_file_is_a_damaged_file(tmp_path):
    write_cifar10(str(tmp_path / "packed"), num_train=10, num_test=4)
    with tarfile.open(tmp_path / "packed" / "cifar10" / "cifar-10-python.tar.gz") as t:
        t.extractall(tmp_path / "plain", filter="data")
    batch = tmp_path / "plain" / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueq\x00\x85R.")
    with pytest.raises(DamagedFileError, match="os.system"):
        cifar10.load_data(data_dir=str(tmp_path / "plain"), download=False)


def test_truncated_cifar_archive(tmp_path):
    write_cifar10(str(tmp_path), num_train=10, num_test=4)
    path = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    path.write_bytes(path.read_bytes()[:-300])
    with pytest.raises(DamagedFileError) as info:
        cifar10.load_data(data_dir=str(tmp_path), download=False)
    assert_names_damaged_file(info.value, path)


def test_affnist_zip_with_a_corrupted_member(tmp_path):
    write_affnist(str(tmp_path), num_test=8)
    path = tmp_path / "affnist" / "test.mat.zip"
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("test.mat")
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
        size = info.compress_size
    data = bytearray(path.read_bytes())
    for offset in range(start + size // 3, start + size // 3 + 40):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedFileError) as error:
        affnist.load_data(data_dir=str(tmp_path), download=False)
    assert_names_damaged_file(error.value, path)


def test_truncated_affnist_zip(tmp_path):
    write_affnist(str(tmp_path), num_test=8)
    path = tmp_path / "affnist" / "test.mat.zip"
    path.write_bytes(path.read_bytes()[:-60])
    with pytest.raises(DamagedFileError) as error:
        affnist.load_data(data_dir=str(tmp_path), download=False)
    assert_names_damaged_file(error.value, path)


def test_corrupted_smallnorb_gzip(tmp_path):
    write_smallnorb(str(tmp_path), num_train=4, num_test=2)
    path = tmp_path / "smallnorb" / smallnorb.FILE_NAMES[0]
    data = bytearray(path.read_bytes())
    for offset in range(30, min(len(data) - 30, 400)):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedFileError) as info:
        smallnorb.load_data(data_dir=str(tmp_path), download=False)
    assert_names_damaged_file(info.value, path)


def test_damaged_shipped_tecator_file(tmp_path, monkeypatch):
    path = tmp_path / "tecator.npz"
    with open(tecator._path(), "rb") as stream:
        data = bytearray(stream.read())
    data[1000] ^= 0xFF
    path.write_bytes(bytes(data))
    monkeypatch.setattr(tecator, "_path", lambda: str(path))
    with pytest.raises(DamagedFileError, match=tecator.FILE_SHA256) as info:
        tecator.load_data()
    assert_names_damaged_file(info.value, path)
    assert "reinstall anysma" in str(info.value)


def test_missing_file_is_not_reported_as_damaged(tmp_path):
    with pytest.raises(FileNotFoundError):
        with _files.damage_guard(str(tmp_path / "nothing"), "", (OSError,)):
            open(tmp_path / "nothing", "rb")


# --- Item 9: status --------------------------------------------------------


def test_status_reports_a_truncated_npz_as_damaged(tmp_path):
    path = small_npz(tmp_path / "mnist.npz")
    write_cifar10(str(tmp_path), num_train=5, num_test=2)
    by_name = {entry["name"]: entry for entry in datasets.status(str(tmp_path))}
    assert by_name["mnist"]["state"] == "present"
    assert by_name["mnist"]["problem"] is None
    assert by_name["cifar10"]["state"] == "present"
    assert by_name["affnist"]["state"] == "missing"
    assert by_name["tecator"]["state"] == "present"
    path.write_bytes(path.read_bytes()[:-50])
    entry = {entry["name"]: entry for entry in datasets.status(str(tmp_path))}["mnist"]
    assert entry["state"] == "damaged" and entry["present"]
    assert str(path) in entry["problem"] and "damaged" in entry["problem"]


def test_status_checks_the_published_sha256(tmp_path):
    write_mnist_idx(str(tmp_path), num_train=10, num_test=4534)
    path = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.decompress(path.read_bytes()))  # the published size
    entry = datasets.status(str(tmp_path))[0]
    assert entry["name"] == "mnist" and entry["state"] == "damaged"
    assert str(path) in entry["problem"]


def test_status_reports_a_damaged_tecator_file(tmp_path, monkeypatch):
    path = tmp_path / "tecator.npz"
    path.write_bytes(b"no npz")
    monkeypatch.setattr(tecator, "_path", lambda: str(path))
    entry = datasets.status(str(tmp_path))[-1]
    assert entry["name"] == "tecator" and entry["state"] == "damaged"


# --- Item 12: https only, plain file names ------------------------------------


def test_download_refuses_plain_http(tmp_path):
    target = tmp_path / "cache" / "copy.bin"
    with pytest.raises(ValueError, match="https://.*http://example.org/a.bin"):
        _files.download("http://example.org/a.bin", str(target), "0" * 64)
    assert not target.parent.exists() or os.listdir(target.parent) == []
    with pytest.raises(ValueError, match="ftp"):
        _files.download("ftp://example.org/a.bin", str(target), "0" * 64)


def test_redirects_to_plain_http_are_refused():
    handler = downloads._HttpsOnlyRedirects()
    request = urllib.request.Request("https://example.org/a.bin")
    with pytest.raises(downloads.DownloadError, match="not https"):
        handler.redirect_request(request, None, 302, "Found", {}, "http://x.org/a")
    followed = handler.redirect_request(
        request, None, 302, "Found", {}, "https://mirror.example.org/a.bin"
    )
    assert followed.full_url == "https://mirror.example.org/a.bin"


@pytest.mark.parametrize(
    "name, url",
    [
        ("a.bin", "http://example.org/a.bin"),
        ("../a.bin", "https://example.org/a.bin"),
        ("sub/a.bin", "https://example.org/a.bin"),
        ("..", "https://example.org/a.bin"),
        ("/abs.bin", "https://example.org/a.bin"),
    ],
)
def test_remote_files_need_https_and_plain_names(name, url):
    with pytest.raises(ValueError, match="https|plain file name"):
        _files.RemoteFile(name, url, "0" * 64, 1)


def test_every_registered_dataset_url_is_https():
    for module in (mnist, fashion_mnist, cifar10, affnist, smallnorb):
        for known in module.SPEC.known_files:
            assert known.url.startswith("https://"), known.url
            assert os.path.basename(known.name) == known.name


def test_fashion_mnist_comes_from_the_https_copy_keras_uses():
    base = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
    expected = {
        "train-images-idx3-ubyte.gz": (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            26421880,
        ),
        "train-labels-idx1-ubyte.gz": (
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            29515,
        ),
        "t10k-images-idx3-ubyte.gz": (
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            4422102,
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            5148,
        ),
    }
    for remote in fashion_mnist.SPEC.remote_files:
        assert remote.url == base + remote.name
        assert (remote.sha256, remote.size) == expected[remote.name]
