"""`anysma datasets` and damaged files through the command line."""

import contextlib
import gzip
import io

import numpy as np
import pytest

from anysma import cli
from anysma.testing.datasets import write_mnist_idx


@pytest.fixture(autouse=True)
def isolated_data_folders(tmp_path, monkeypatch):
    """Keep the user's data folders and download cache out of every test."""
    monkeypatch.delenv("ANYSMA_DATA_DIR", raising=False)
    monkeypatch.setenv("ANYSMA_CACHE_DIR", str(tmp_path / "cache"))


def run_cli(argv):
    """`(exit code, stdout, stderr)` of `anysma argv`, run in-process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def rows(out):
    return {line.split()[0]: line for line in out.splitlines()[1:]}


def truncated_mnist_npz(folder):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mnist.npz"
    np.savez(
        path,
        x_train=np.zeros((4, 28, 28), np.uint8),
        y_train=np.arange(4, dtype=np.uint8),
        x_test=np.zeros((2, 28, 28), np.uint8),
        y_test=np.arange(2, dtype=np.uint8),
    )
    path.write_bytes(path.read_bytes()[:-40])
    return path


def test_datasets_says_damaged_for_a_truncated_npz(tmp_path):
    path = truncated_mnist_npz(tmp_path)
    code, out, _ = run_cli(["datasets", "--data_dir", str(tmp_path)])
    assert code == 0
    line = rows(out)["mnist"]
    assert line.split()[1] == "damaged"
    assert str(path) in line and "damaged" in line.split(maxsplit=2)[2]
    assert rows(out)["tecator"].split()[1] == "yes"
    assert rows(out)["cifar10"].split()[1] == "no"


def test_datasets_says_damaged_for_a_wrong_sha256(tmp_path):
    # Plain labels of 4,534 images: the size of the published gzipped file.
    write_mnist_idx(str(tmp_path), num_train=10, num_test=4534)
    path = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    code, out, _ = run_cli(["datasets", "--data_dir", str(tmp_path)])
    assert rows(out)["mnist"].split()[1] == "yes"
    path.write_bytes(gzip.decompress(path.read_bytes()))
    code, out, _ = run_cli(["datasets", "--data_dir", str(tmp_path)])
    assert code == 0
    line = rows(out)["mnist"]
    assert line.split()[1] == "damaged" and str(path) in line and "sha256" in line


def test_loading_a_truncated_dataset_exits_2_with_one_line(tmp_path):
    path = truncated_mnist_npz(tmp_path / "data")
    code, _, err = run_cli(
        ["run", "lvq_mnist", "--data_dir", str(tmp_path / "data")]
        + ["--save_dir", str(tmp_path / "out"), "--epochs", "1", "--verbose", "0"]
    )
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("anysma: error: ")
    assert str(path) in err and "damaged" in err


def test_a_damaged_weights_file_exits_2_with_one_line(tmp_path):
    path = tmp_path / "broken.weights.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 40)  # a signature, no file
    code, _, err = run_cli(
        ["test", "gmlvq_tecator", "-w", str(path), "--save_dir", str(tmp_path / "out")]
    )
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("anysma: error: ")
    assert str(path) in err and "damaged" in err
