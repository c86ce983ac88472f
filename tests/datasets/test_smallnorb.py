import gzip
import struct

import numpy as np
import pytest

from anysma.datasets import DatasetNotFoundError
from anysma.datasets import smallnorb
from anysma.testing.datasets import write_smallnorb

# uint8 matrix of shape (2, 1, 2, 3): magic 0x1E3D4C55, ndim 4, four sizes.
UINT8_4D = bytes.fromhex(
    "554C3D1E 04000000 02000000 01000000 02000000 03000000"
) + bytes(range(12))
# int32 vector (3,): magic 0x1E3D4C54, ndim 1, sizes 3, 1, 1 (three are stored).
INT32_1D = bytes.fromhex(
    "544C3D1E 01000000 03000000 01000000 01000000 05000000 FEFFFFFF 00010000"
)


def test_parse_uint8_four_dimensions():
    values = smallnorb.parse_norb(UINT8_4D)
    assert values.shape == (2, 1, 2, 3) and values.dtype == np.uint8
    np.testing.assert_array_equal(values.ravel(), np.arange(12))


def test_parse_int32_with_padded_header():
    values = smallnorb.parse_norb(INT32_1D)
    assert values.dtype == np.int32 and values.dtype.isnative
    np.testing.assert_array_equal(values, [5, -2, 256])


def test_parse_int32_matrix():
    data = bytes.fromhex("544C3D1E 02000000 02000000 02000000 01000000")
    data += struct.pack("<4i", 1, 2, 3, 4)
    np.testing.assert_array_equal(smallnorb.parse_norb(data), [[1, 2], [3, 4]])


def test_wrong_magic_number():
    with pytest.raises(ValueError, match="0x1E3D4C57"):
        smallnorb.parse_norb(b"\x57" + UINT8_4D[1:])


def test_truncated():
    with pytest.raises(ValueError, match="truncated"):
        smallnorb.parse_norb(UINT8_4D[:-1])
    with pytest.raises(ValueError, match="truncated"):
        smallnorb.parse_norb(UINT8_4D[:12])
    with pytest.raises(ValueError, match="longer than its header says"):
        smallnorb.parse_norb(INT32_1D + b"\x00")


def test_synthetic_files(tmp_path):
    folder = write_smallnorb(str(tmp_path), num_train=64, num_test=32, seed=2)
    (x_train, y_train, info_train), (x_test, y_test, info_test) = smallnorb.load_data(
        data_dir=folder
    )
    assert x_train.shape == (64, 96, 96, 2) and x_train.dtype == np.uint8
    assert y_train.shape == (64,) and y_train.dtype == np.uint8
    assert info_train.shape == (64, 4) and info_train.dtype == np.int32
    assert x_test.shape == (32, 96, 96, 2) and info_test.shape == (32, 4)
    assert set(np.unique(y_train)) == set(range(5))
    assert set(np.unique(info_train[:, 0])) <= {4, 6, 7, 8, 9}
    assert set(np.unique(info_test[:, 0])) <= {0, 1, 2, 3, 5}
    for info in (info_train, info_test):
        assert info[:, 1].min() >= 0 and info[:, 1].max() <= 8
        assert set(np.unique(info[:, 2])) <= set(range(0, 36, 2))
        assert info[:, 3].min() >= 0 and info[:, 3].max() <= 5


def test_synthetic_files_decode_by_hand(tmp_path):
    write_smallnorb(str(tmp_path), num_train=3, num_test=2)
    name = "smallnorb-5x46789x9x18x6x2x96x96-training-dat.mat.gz"
    raw = gzip.decompress((tmp_path / "smallnorb" / name).read_bytes())
    magic, ndim, *sizes = struct.unpack("<6i", raw[:24])
    assert (magic, ndim, sizes) == (0x1E3D4C55, 4, [3, 2, 96, 96])
    stored = np.frombuffer(raw[24:], np.uint8).reshape(3, 2, 96, 96)
    (x_train, _, _), _ = smallnorb.load_data(data_dir=str(tmp_path))
    # Channel c of the loaded images is camera c of the file.
    np.testing.assert_array_equal(x_train[..., 0], stored[:, 0])
    np.testing.assert_array_equal(x_train[..., 1], stored[:, 1])
    cat = gzip.decompress(
        (tmp_path / "smallnorb" / name.replace("-dat", "-cat")).read_bytes()
    )
    assert struct.unpack("<5i", cat[:20]) == (0x1E3D4C54, 1, 3, 1, 1)


def test_npz_layout(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, count in (("train", 4), ("test", 3)):
        arrays[f"x_{split}"] = rng.integers(0, 256, (count, 96, 96, 2), dtype=np.uint8)
        arrays[f"y_{split}"] = rng.integers(0, 5, count)
        arrays[f"info_{split}"] = rng.integers(0, 9, (count, 4))
    np.savez(tmp_path / "smallnorb.npz", **arrays)
    train, test = smallnorb.load_data(data_dir=str(tmp_path), download=False)
    np.testing.assert_array_equal(train[0], arrays["x_train"])
    np.testing.assert_array_equal(test[2], arrays["info_test"])


def test_mismatched_lengths(tmp_path):
    write_smallnorb(str(tmp_path), num_train=4, num_test=2)
    name = "smallnorb-5x01235x9x18x6x2x96x96-testing-info.mat.gz"
    header = struct.pack("<5i", 0x1E3D4C54, 2, 3, 4, 1)
    data = header + np.zeros(12, "<i4").tobytes()
    (tmp_path / "smallnorb" / name).write_bytes(gzip.compress(data))
    with pytest.raises(ValueError, match="test set has 2 images"):
        smallnorb.load_data(data_dir=str(tmp_path))


def test_missing_data_message(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        smallnorb.load_data(data_dir=str(tmp_path), download=False)
    message = str(info.value)
    for name in smallnorb.FILE_NAMES:
        assert name in message
    assert "https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/" in message


def grid_split(instances):
    """Every (elevation, azimuth) viewpoint once, as a smallNORB-like split."""
    elevation, azimuth = np.meshgrid(np.arange(9), np.arange(0, 36, 2), indexing="ij")
    count = elevation.size
    info = np.stack(
        [
            np.resize(instances, count),
            elevation.ravel(),
            azimuth.ravel(),
            np.arange(count) % 6,
        ],
        axis=1,
    )
    images = np.arange(count).reshape(count, 1, 1, 1) * np.ones((1, 2, 2, 2))
    return images, np.arange(count) % 5, info


def test_split_normal():
    train, test = grid_split([4, 6]), grid_split([0, 1])
    new_train, validation, novel = smallnorb.split("normal", train, test)
    assert novel is None
    np.testing.assert_array_equal(new_train[2], train[2])
    np.testing.assert_array_equal(validation[2], test[2])


def test_split_elevation():
    train, test = grid_split([4, 6]), grid_split([0, 1])
    new_train, validation, novel = smallnorb.split("elevation", train, test)
    # 162 viewpoints: 3 of 9 elevations × 18 azimuths are familiar.
    assert len(new_train[0]) == 54 and len(validation[0]) == 54
    assert len(novel[0]) == 108
    assert set(new_train[2][:, 1]) == {0, 1, 2}
    assert set(validation[2][:, 1]) == {0, 1, 2}
    assert set(novel[2][:, 1]) == {3, 4, 5, 6, 7, 8}
    # Validation and novel test sets come from the test instances only.
    assert set(validation[2][:, 0]) | set(novel[2][:, 0]) == {0, 1}
    # Images, labels and info stay aligned.
    np.testing.assert_array_equal(
        new_train[0][:, 0, 0, 0], np.flatnonzero(train[2][:, 1] < 3)
    )


def test_split_azimuth():
    train, test = grid_split([4]), grid_split([0])
    new_train, validation, novel = smallnorb.split("azimuth", train, test)
    # 6 of 18 azimuths × 9 elevations are familiar.
    assert len(new_train[0]) == 54 and len(validation[0]) == 54 and len(novel[0]) == 108
    familiar_degrees = {0, 20, 40, 300, 320, 340}
    assert {10 * a for a in new_train[2][:, 2]} == familiar_degrees
    assert {10 * a for a in validation[2][:, 2]} == familiar_degrees
    assert {10 * a for a in novel[2][:, 2]} == set(range(60, 290, 20))
    np.testing.assert_array_equal(
        novel[1], test[1][np.isin(test[2][:, 2], range(6, 30, 2))]
    )


def test_split_on_synthetic_files(tmp_path):
    write_smallnorb(str(tmp_path), num_train=64, num_test=32)
    train, test = smallnorb.load_data(data_dir=str(tmp_path))
    new_train, validation, novel = smallnorb.split("elevation", train, test)
    assert len(validation[0]) + len(novel[0]) == 32
    assert len(new_train[0]) == int(np.sum(train[2][:, 1] <= 2))


def test_split_rejects_bad_arguments():
    train = grid_split([4])
    with pytest.raises(ValueError, match="Received: setting='lighting'"):
        smallnorb.split("lighting", train, train)
    with pytest.raises(ValueError, match="`train`"):
        smallnorb.split("normal", train[:2], train)
    with pytest.raises(ValueError, match=r"`test` info must have shape \(n, 4\)"):
        smallnorb.split("normal", train, (train[0], train[1], train[2][:, :3]))
    with pytest.raises(ValueError, match="same length"):
        smallnorb.split("azimuth", train, (train[0][:3], train[1], train[2]))
