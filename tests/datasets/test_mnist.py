import gzip
import os

import numpy as np
import pytest

from anysma.datasets import DatasetNotFoundError
from anysma.datasets import fashion_mnist
from anysma.datasets import mnist
from anysma.testing.datasets import write_mnist_idx

# Official class counts of MNIST (train, test), published with the dataset.
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_synthetic_idx_files(tmp_path):
    folder = write_mnist_idx(str(tmp_path), num_train=64, num_test=32, seed=3)
    assert folder == str(tmp_path)
    (x_train, y_train), (x_test, y_test) = mnist.load_data(data_dir=folder)
    assert x_train.shape == (64, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (64,) and y_train.dtype == np.uint8
    assert x_test.shape == (32, 28, 28) and y_test.shape == (32,)
    assert set(np.unique(y_train)) == set(range(10))
    # Class-dependent patterns: the class means differ clearly.
    means = np.stack([x_train[y_train == k].mean(axis=0) for k in range(10)])
    distances = np.linalg.norm(
        means[:, None].reshape(10, 1, -1) - means[None].reshape(1, 10, -1), axis=-1
    )
    assert distances[~np.eye(10, dtype=bool)].min() > 100


def test_synthetic_files_match_hand_decoded_bytes(tmp_path):
    write_mnist_idx(str(tmp_path), num_train=5, num_test=4)
    folder = tmp_path / "mnist"
    raw = gzip.decompress((folder / "train-labels-idx1-ubyte.gz").read_bytes())
    assert raw[:4] == b"\x00\x00\x08\x01"
    assert int.from_bytes(raw[4:8], "big") == 5
    images = gzip.decompress((folder / "t10k-images-idx3-ubyte.gz").read_bytes())
    assert images[:4] == b"\x00\x00\x08\x03"
    assert [int.from_bytes(images[i : i + 4], "big") for i in (4, 8, 12)] == [4, 28, 28]
    (_, y_train), (x_test, _) = mnist.load_data(data_dir=str(tmp_path))
    np.testing.assert_array_equal(y_train, np.frombuffer(raw[8:], np.uint8))
    np.testing.assert_array_equal(
        x_test, np.frombuffer(images[16:], np.uint8).reshape(4, 28, 28)
    )


def test_plain_idx_files_in_data_dir(tmp_path):
    write_mnist_idx(str(tmp_path), num_train=6, num_test=4, fashion=True)
    folder = tmp_path / "fashion_mnist"
    for path in folder.iterdir():
        path.with_suffix("").write_bytes(gzip.decompress(path.read_bytes()))
        path.unlink()
    (x_train, _), (x_test, _) = fashion_mnist.load_data(data_dir=str(folder))
    assert x_train.shape == (6, 28, 28) and x_test.shape == (4, 28, 28)


def test_keras_npz_layout(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 5, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 3, dtype=np.uint8),
    }
    np.savez(tmp_path / "fashion_mnist.npz", **arrays)
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(
        data_dir=str(tmp_path), download=False
    )
    np.testing.assert_array_equal(x_train, arrays["x_train"])
    np.testing.assert_array_equal(y_test, arrays["y_test"])
    # mnist.npz is another dataset: MNIST does not take fashion_mnist.npz.
    with pytest.raises(DatasetNotFoundError):
        mnist.load_data(data_dir=str(tmp_path), download=False)


def test_wrong_image_shape(tmp_path):
    np.savez(
        tmp_path / "mnist.npz",
        x_train=np.zeros((2, 28, 27), np.uint8),
        y_train=np.zeros(2, np.uint8),
        x_test=np.zeros((1, 28, 28), np.uint8),
        y_test=np.zeros(1, np.uint8),
    )
    with pytest.raises(ValueError, match=r"\(2, 28, 27\)"):
        mnist.load_data(data_dir=str(tmp_path))


def test_mismatched_labels(tmp_path):
    write_mnist_idx(str(tmp_path), num_train=5, num_test=4)
    labels = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(bytes.fromhex("00000801 00000002 0102")))
    with pytest.raises(ValueError, match="5 images but labels of shape"):
        mnist.load_data(data_dir=str(tmp_path))


def test_truncated_file_is_reported(tmp_path):
    write_mnist_idx(str(tmp_path), num_train=5, num_test=4)
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[:-10]))
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz is truncated"):
        mnist.load_data(data_dir=str(tmp_path))


def test_missing_data_message(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        mnist.load_data(data_dir=str(tmp_path), download=False)
    message = str(info.value)
    for remote in mnist.SPEC.remote_files:
        assert remote.name in message
        assert remote.url in message
    assert "mnist.npz" in message and str(tmp_path) in message


def test_environment_variable(tmp_path, monkeypatch):
    write_mnist_idx(str(tmp_path / "b"), num_train=7, num_test=3)
    folders = [str(tmp_path / "a"), str(tmp_path / "b")]
    monkeypatch.setenv("ANYSMA_DATA_DIR", os.pathsep.join(folders))
    (x_train, _), _ = mnist.load_data(download=False)
    assert x_train.shape == (7, 28, 28)


def test_published_checksums_are_well_formed():
    for spec in (mnist.SPEC, fashion_mnist.SPEC):
        assert len(spec.remote_files) == 4
        for remote in spec.remote_files:
            assert len(remote.sha256) == 64 and int(remote.sha256, 16) >= 0
            assert remote.url.endswith("/" + remote.name)


def test_real_mnist(shared_data):
    folder = os.path.dirname(shared_data("mnist.npz"))
    (x_train, y_train), (x_test, y_test) = mnist.load_data(
        data_dir=folder, download=False
    )
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and y_test.dtype == np.uint8
    assert np.bincount(y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == MNIST_TEST_COUNTS
    assert x_train.max() == 255 and x_train.min() == 0


def test_real_fashion_mnist(shared_data):
    folder = os.path.dirname(shared_data("fashion_mnist.npz"))
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(
        data_dir=folder, download=False
    )
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
