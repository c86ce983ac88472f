import contextlib
import gzip
import io
import os
import subprocess
import sys

import numpy as np
import pytest

from anysma import cli
from anysma import experiments
from anysma.testing.datasets import write_mnist_idx

REPO = os.path.join(os.path.dirname(__file__), "..")


def run_cli(argv):
    """`(exit code, stdout, stderr)` of `anysma argv`, run in-process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def test_list_names_every_experiment_with_its_dataset():
    code, out, _ = run_cli(["list"])
    assert code == 0
    for name in experiments.EXPERIMENTS:
        module = experiments.get(name)
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert module.DATASET in line and module.EXPECTED in line


def test_unknown_experiment_exits_2_and_lists_the_valid_names():
    code, _, err = run_cli(["run", "no_such_experiment"])
    assert code == 2
    assert "no_such_experiment" in err
    for name in experiments.EXPERIMENTS:
        assert name in err


def test_unknown_flag_exits_2_with_the_usage():
    code, _, err = run_cli(["run", "gmlvq_tecator", "--no_such_flag"])
    assert code == 2
    assert "--no_such_flag" in err and "--epochs" in err


def test_testing_without_weights_is_refused():
    code, _, err = run_cli(["run", "gmlvq_tecator", "-t"])
    assert code == 2 and "--weights" in err


def test_test_and_plot_need_weights():
    for command in ("test", "plot"):
        code, _, err = run_cli([command, "gmlvq_tecator"])
        assert code == 2 and "-w/--weights" in err


def test_missing_weights_file_exits_1_with_a_message(tmp_path):
    missing = str(tmp_path / "nothing.weights.h5")
    code, _, err = run_cli(["test", "gmlvq_tecator", "-w", missing])
    assert code in (1, 2)
    assert "nothing.weights.h5" in err and err.count("\n") == 1


def test_missing_dataset_exits_1_naming_the_file_and_where_to_put_it(
    tmp_path, monkeypatch
):
    from anysma.datasets import _files

    def no_network(url, *args, **kwargs):
        raise OSError(f"no network in tests ({url})")

    monkeypatch.setattr(_files, "download", no_network)
    monkeypatch.setenv("ANYSMA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ANYSMA_DATA_DIR", raising=False)
    code, _, err = run_cli(
        ["run", "lvq_caps_cifar10", "--data_dir", str(tmp_path)]
        + ["--save_dir", str(tmp_path / "out")]
    )
    assert code == 1
    assert "cifar-10-python.tar.gz" in err
    assert "ANYSMA_DATA_DIR" in err


def test_datasets_reports_presence_and_location(tmp_path, monkeypatch):
    monkeypatch.setenv("ANYSMA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ANYSMA_DATA_DIR", raising=False)
    code, out, _ = run_cli(["datasets", "--data_dir", str(tmp_path)])
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(lines) >= {"mnist", "cifar10", "affnist", "smallnorb", "tecator"}
    assert lines["tecator"].split()[1] == "yes"
    assert lines["cifar10"].split()[1] == "no"


@pytest.mark.parametrize("name", sorted(experiments.EXPERIMENTS))
def test_help_lists_the_original_flags(name):
    code, out, _ = run_cli(["run", name, "--help"])
    assert code == 0
    for flag in ("--epochs", "--batch_size", "--lr", "--save_dir", "--testing"):
        assert flag in out
    assert "--weights" in out


def test_example_scripts_run_as_in_the_original():
    """`PYTHONPATH=. python examples/<name>.py` works (one script is run)."""
    scripts = set(os.listdir(os.path.join(REPO, "examples")))
    assert {f"{name}.py" for name in experiments.EXPERIMENTS} <= scripts
    result = subprocess.run(
        [sys.executable, os.path.join("examples", "lvq_mnist.py"), "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": "."},
    )
    assert result.returncode == 0, result.stderr
    assert "usage: lvq_mnist" in result.stdout


# === `anysma datasets` and damaged files ===


@pytest.fixture
def isolated_data_folders(tmp_path, monkeypatch):
    """Keep the user's data folders and download cache out of every test."""
    monkeypatch.delenv("ANYSMA_DATA_DIR", raising=False)
    monkeypatch.setenv("ANYSMA_CACHE_DIR", str(tmp_path / "cache"))


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


@pytest.mark.usefixtures("isolated_data_folders")
def test_datasets_says_damaged_for_a_truncated_npz(tmp_path):
    path = truncated_mnist_npz(tmp_path)
    code, out, _ = run_cli(["datasets", "--data_dir", str(tmp_path)])
    assert code == 0
    line = rows(out)["mnist"]
    assert line.split()[1] == "damaged"
    assert str(path) in line and "damaged" in line.split(maxsplit=2)[2]
    assert rows(out)["tecator"].split()[1] == "yes"
    assert rows(out)["cifar10"].split()[1] == "no"


@pytest.mark.usefixtures("isolated_data_folders")
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


@pytest.mark.usefixtures("isolated_data_folders")
def test_loading_a_truncated_dataset_exits_2_with_one_line(tmp_path):
    path = truncated_mnist_npz(tmp_path / "data")
    code, _, err = run_cli(
        ["run", "lvq_mnist", "--data_dir", str(tmp_path / "data")]
        + ["--save_dir", str(tmp_path / "out"), "--epochs", "1", "--verbose", "0"]
    )
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("anysma: error: ")
    assert str(path) in err and "damaged" in err


@pytest.mark.usefixtures("isolated_data_folders")
def test_a_damaged_weights_file_exits_2_with_one_line(tmp_path):
    path = tmp_path / "broken.weights.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 40)  # a signature, no file
    code, _, err = run_cli(
        ["test", "gmlvq_tecator", "-w", str(path), "--save_dir", str(tmp_path / "out")]
    )
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("anysma: error: ")
    assert str(path) in err and "damaged" in err
