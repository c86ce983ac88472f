import io
import os
import pickle
import struct
import tarfile

import numpy as np
import pytest

from anysma.datasets import DatasetNotFoundError
from anysma.datasets import cifar10
from anysma.testing.datasets import write_cifar10


def python2_batch(pixels, labels):
    """The bytes Python 2's `cPickle.dump(batch, file, 2)` writes for a batch.

    `batch = {'data': <uint8 array (n, 3072)>, 'labels': [...]}`, with the
    memo puts (`q`) and the `numpy.core.multiarray._reconstruct` call of
    NumPy 1.x, as in the official CIFAR-10 files.
    """
    num_images = len(labels)
    return (
        b"\x80\x02}q\x01(U\x04dataq\x02"
        b"cnumpy.core.multiarray\n_reconstruct\nq\x03cnumpy\nndarray\nq\x04"
        b"K\x00\x85U\x01b\x87Rq\x05(K\x01K" + bytes([num_images]) + b"M\x00\x0c\x86"
        b"cnumpy\ndtype\nq\x06U\x02u1K\x00K\x01\x87Rq\x07"
        b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        b"\x89T" + struct.pack("<I", len(pixels)) + pixels + b"tb"
        b"U\x06labelsq\x08]q\x09("
        + b"".join(b"K" + bytes([v]) for v in labels)
        + b"eu."
    )


def test_python2_pickle_decodes_to_known_images():
    pixels = (np.arange(2 * 3072) % 251).astype(np.uint8).tobytes()
    images, labels = cifar10.unpickle_batch(python2_batch(pixels, [3, 7]))
    assert images.shape == (2, 32, 32, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, [3, 7])

    # Pixel (row, column) of image i: red at i*3072 + 32*row + column, green
    # 1024 later, blue 2048 later.
    def expected(i, row, column, channel):
        return pixels[i * 3072 + channel * 1024 + 32 * row + column]

    for i, row, column, channel in [
        (0, 0, 0, 0),
        (0, 0, 1, 1),
        (1, 5, 9, 2),
        (1, 31, 31, 0),
    ]:
        assert images[i, row, column, channel] == expected(i, row, column, channel)


class Exploit:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def test_unpickler_refuses_code(tmp_path):
    target = str(tmp_path / "created-by-pickle")
    payload = pickle.dumps({"data": Exploit(target), "labels": []}, protocol=4)
    with pytest.raises(pickle.UnpicklingError, match=r"(posix|nt|os)\.mkdir"):
        cifar10.unpickle_batch(payload)
    assert not os.path.exists(target)


def test_unpickler_refuses_other_numpy_functions():
    payload = b"\x80\x02cnumpy\nload\nU\x01xq\x00\x85R."
    with pytest.raises(pickle.UnpicklingError, match="numpy.load"):
        cifar10.unpickle_batch(payload)


def test_batch_without_labels():
    payload = pickle.dumps({b"data": np.zeros((1, 3072), np.uint8)}, protocol=4)
    with pytest.raises(ValueError, match="'labels'"):
        cifar10.unpickle_batch(payload)


def test_batch_with_wrong_row_length():
    payload = pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]})
    with pytest.raises(ValueError, match=r"\(n, 3072\)"):
        cifar10.unpickle_batch(payload)


def test_synthetic_tarball(tmp_path):
    folder = write_cifar10(str(tmp_path), num_train=64, num_test=32, seed=1)
    (x_train, y_train), (x_test, y_test) = cifar10.load_data(data_dir=folder)
    assert x_train.shape == (64, 32, 32, 3) and x_train.dtype == np.uint8
    assert y_train.shape == (64, 1) and y_train.dtype == np.uint8
    assert x_test.shape == (32, 32, 32, 3) and y_test.shape == (32, 1)
    assert set(np.unique(y_train)) == set(range(10))
    means = np.stack(
        [x_train[y_train[:, 0] == k].mean(axis=0).ravel() for k in range(10)]
    )
    distances = np.linalg.norm(means[:, None] - means[None], axis=-1)
    assert distances[~np.eye(10, dtype=bool)].min() > 100


def test_synthetic_tarball_has_the_real_layout(tmp_path):
    write_cifar10(str(tmp_path), num_train=10, num_test=4)
    with tarfile.open(tmp_path / "cifar10" / "cifar-10-python.tar.gz") as archive:
        names = sorted(archive.getnames())
        meta = archive.extractfile("cifar-10-batches-py/batches.meta").read()
        first = archive.extractfile("cifar-10-batches-py/data_batch_1").read()
    expected = [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)]
    expected += ["cifar-10-batches-py/batches.meta", "cifar-10-batches-py/test_batch"]
    assert names == sorted(expected)
    # Python 2 strings: SHORT_BINSTRING opcodes, loaded as bytes.
    assert first.startswith(b"\x80\x02}") and b"U\x04data" in first
    labels = pickle.loads(meta, encoding="bytes")[b"label_names"]
    assert labels[0] == b"airplane" and len(labels) == 10


def test_extracted_folder(tmp_path):
    write_cifar10(str(tmp_path / "packed"), num_train=10, num_test=4, seed=2)
    with tarfile.open(
        tmp_path / "packed" / "cifar10" / "cifar-10-python.tar.gz"
    ) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    from_folder = cifar10.load_data(data_dir=str(tmp_path / "unpacked"))
    from_archive = cifar10.load_data(data_dir=str(tmp_path / "packed"))
    for left, right in zip(from_folder, from_archive):
        np.testing.assert_array_equal(left[0], right[0])
        np.testing.assert_array_equal(left[1], right[1])


def test_archive_without_test_batch(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="data_batch_2"):
        cifar10.load_data(data_dir=str(tmp_path))


def test_damaged_archive(tmp_path):
    write_cifar10(str(tmp_path), num_train=10, num_test=4)
    path = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="damaged"):
        cifar10.load_data(data_dir=str(tmp_path))


def test_missing_data_message(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        cifar10.load_data(data_dir=str(tmp_path), download=False)
    message = str(info.value)
    assert "cifar-10-python.tar.gz" in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
