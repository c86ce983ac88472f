import io
import zipfile

import numpy as np
import pytest
from scipy.io import savemat

from anysma.datasets import DatasetNotFoundError
from anysma.datasets import affnist
from anysma.testing.datasets import write_affnist


def write_zip(path, mat_contents, member="test.mat"):
    buffer = io.BytesIO()
    savemat(buffer, mat_contents, format="5")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, buffer.getvalue())


def test_pixel_order_within_a_column(tmp_path):
    # Two images whose pixel k (in file order) has the value k % 256, resp.
    # the constant 7; per the file convention, pixel k is row k // 40,
    # column k % 40.
    column = (np.arange(1600) % 256).astype(np.uint8)
    image = np.stack([column, np.full(1600, 7, np.uint8)], axis=1)
    labels = np.array([[4, 9]], np.uint8)
    write_zip(
        tmp_path / "test.mat.zip",
        {"affNISTdata": {"image": image, "label_int": labels}},
    )
    x_test, y_test = affnist.load_data(data_dir=str(tmp_path), download=False)
    assert x_test.shape == (2, 40, 40) and x_test.dtype == np.uint8
    np.testing.assert_array_equal(y_test, [4, 9])
    assert x_test[0, 0, 1] == 1  # first row continues along the columns
    assert x_test[0, 1, 0] == 40  # the second row starts at pixel 40
    assert x_test[0, 3, 5] == (3 * 40 + 5) % 256
    assert np.all(x_test[1] == 7)


def test_synthetic_file(tmp_path):
    folder = write_affnist(str(tmp_path), num_test=32, seed=4)
    x_test, y_test = affnist.load_data(data_dir=folder)
    assert x_test.shape == (32, 40, 40) and y_test.shape == (32,)
    assert y_test.dtype == np.uint8
    assert set(np.unique(y_test)) == set(range(10))
    # The digits sit at random places: the bright area moves between images.
    centres = [np.argwhere(image > 100).mean(axis=0) for image in x_test]
    assert np.ptp(np.array(centres), axis=0).min() > 3


def test_synthetic_file_layout(tmp_path):
    write_affnist(str(tmp_path), num_test=5)
    from scipy.io import loadmat

    with zipfile.ZipFile(tmp_path / "affnist" / "test.mat.zip") as archive:
        assert archive.namelist() == ["test.mat"]
        contents = loadmat(io.BytesIO(archive.read("test.mat")))
    record = contents["affNISTdata"]
    assert record["image"][0, 0].shape == (1600, 5)
    assert record["label_int"][0, 0].shape == (1, 5)
    one_hot = record["label_one_of_n"][0, 0]
    np.testing.assert_array_equal(one_hot.argmax(axis=0), record["label_int"][0, 0][0])


def test_extracted_mat_file(tmp_path):
    write_affnist(str(tmp_path), num_test=6, seed=1)
    with zipfile.ZipFile(tmp_path / "affnist" / "test.mat.zip") as archive:
        (tmp_path / "plain").mkdir()
        (tmp_path / "plain" / "test.mat").write_bytes(archive.read("test.mat"))
    from_mat = affnist.load_data(data_dir=str(tmp_path / "plain"))
    from_zip = affnist.load_data(data_dir=str(tmp_path))
    np.testing.assert_array_equal(from_mat[0], from_zip[0])
    np.testing.assert_array_equal(from_mat[1], from_zip[1])


def test_missing_field(tmp_path):
    write_zip(
        tmp_path / "test.mat.zip", {"affNISTdata": {"image": np.zeros((1600, 1))}}
    )
    with pytest.raises(ValueError, match="label_int"):
        affnist.load_data(data_dir=str(tmp_path))


def test_wrong_image_size(tmp_path):
    contents = {
        "affNISTdata": {"image": np.zeros((784, 2)), "label_int": np.zeros((1, 2))}
    }
    write_zip(tmp_path / "test.mat.zip", contents)
    with pytest.raises(ValueError, match=r"\(1600, n\)"):
        affnist.load_data(data_dir=str(tmp_path))


def test_not_a_zip(tmp_path):
    (tmp_path / "test.mat.zip").write_bytes(b"not a zip archive")
    with pytest.raises(ValueError, match="not a valid zip"):
        affnist.load_data(data_dir=str(tmp_path))


def test_not_a_mat_file(tmp_path):
    with zipfile.ZipFile(tmp_path / "test.mat.zip", "w") as archive:
        archive.writestr("test.mat", b"\x00" * 300)
    with pytest.raises(ValueError, match="test.mat"):
        affnist.load_data(data_dir=str(tmp_path))


def test_missing_data_message(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        affnist.load_data(data_dir=str(tmp_path), download=False)
    message = str(info.value)
    assert "test.mat.zip" in message and "affNIST" in message
    assert affnist.SPEC.remote_files[0].url in message


def test_pad_mnist():
    digits = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    padded = affnist.pad_mnist(digits)
    assert padded.shape == (2, 40, 40) and padded.dtype == np.uint8
    np.testing.assert_array_equal(padded[:, 6:34, 6:34], digits)
    assert padded[:, :6].sum() == 0 and padded[:, :, 34:].sum() == 0
    assert affnist.pad_mnist(digits[..., None]).shape == (2, 40, 40, 1)
    with pytest.raises(ValueError, match="images.shape"):
        affnist.pad_mnist(np.zeros((2, 32, 32)))
