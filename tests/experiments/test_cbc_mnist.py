"""`anysma run cbc_mnist` on real MNIST and Fashion-MNIST at a tiny budget.

The shared smoke test (`test_experiments.py`) runs the default siamese
setting on MNIST with test mode; here the other settings and Fashion-MNIST,
whose files are found through `ANYSMA_DATA_DIR` (skipped when absent).
"""

import json
import os

import keras
import pytest

from anysma.experiments import cbc_mnist
from anysma.testing.datasets import real_data_file
from anysma.testing.images import check_nontrivial_png

FILES = {"mnist": "mnist.npz", "fashion_mnist": "fashion_mnist.npz"}


@pytest.fixture
def two_steps():
    keras.config.set_max_steps_per_epoch(2)
    yield
    keras.config.set_max_steps_per_epoch(None)


@pytest.mark.requires_trainable_backend
@pytest.mark.filterwarnings("ignore:Limiting steps_per_epoch")
@pytest.mark.filterwarnings("ignore:Your input ran out of data")
@pytest.mark.parametrize(
    "dataset, setting",
    [("mnist", "patch"), ("fashion_mnist", "flat"), ("fashion_mnist", "siamese")],
)
def test_tiny_run_writes_the_plots(dataset, setting, tmp_path, two_steps):
    path = real_data_file(FILES[dataset])
    if path is None:
        pytest.skip(f"the real {FILES[dataset]} was not found in ANYSMA_DATA_DIR")
    data_dir = tmp_path / "data"
    os.makedirs(data_dir / dataset)
    os.symlink(path, data_dir / dataset / FILES[dataset])
    summary = cbc_mnist.main(
        [
            "--dataset",
            dataset,
            "--setting",
            setting,
            "--epochs",
            "1",
            "--batch_size",
            "8",
            "--max_samples",
            "32",
            "--verbose",
            "0",
            "--data_dir",
            str(data_dir),
            "--save_dir",
            str(tmp_path / "out"),
        ]
    )
    assert summary["dataset"] == dataset and summary["setting"] == setting
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    # Only the Gaussian detection has a width.
    assert (setting == "siamese") == ("sigma" not in summary)
    assert setting == "siamese" or summary["sigma"] > 0
    folder = (
        tmp_path
        / "out"
        / cbc_mnist.output_name(
            cbc_mnist.build_parser().parse_args(["--dataset", dataset, "-s", setting])
        )
    )
    with open(folder / "summary.json") as stream:
        assert json.load(stream) == summary
    assert {"components.png", "reasoning.png"} <= set(summary["plots"])
    for plot in ("components.png", "reasoning.png"):
        check_nontrivial_png(str(folder / plot))


@pytest.mark.requires_trainable_backend
@pytest.mark.filterwarnings("ignore:Limiting steps_per_epoch")
@pytest.mark.filterwarnings("ignore:Your input ran out of data")
def test_user_arrays_in_place_of_the_files(tmp_path, two_steps):
    import numpy as np

    from anysma.experiments import ExperimentData

    rng = np.random.default_rng(0)

    def arrays(samples):
        images = rng.uniform(0.0, 1.0, (samples, 784)).astype("float32")
        return images, keras.utils.to_categorical(np.arange(samples) % 10, 10)

    args = cbc_mnist.build_parser().parse_args(
        ["--epochs", "1", "--batch_size", "8", "--verbose", "0", "--no_plots"]
        + ["--setting", "flat", "--save_dir", str(tmp_path)]
    )
    summary = cbc_mnist.run(args, data=ExperimentData(arrays(32), arrays(16)))
    assert summary["dataset"] == "user data" and summary["setting"] == "flat"
    # The paper's Siamese model is the default setting.
    assert cbc_mnist.build_parser().parse_args([]).setting == "siamese"
    with pytest.raises(ValueError, match="784"):
        bad = ExperimentData(arrays(32), (np.zeros((16, 28, 28, 1)), arrays(16)[1]))
        cbc_mnist.run(args, data=bad)


def test_each_dataset_and_setting_writes_its_own_folder():
    # An interrupted run resumes from its folder's backup, so runs of other
    # models or data must not share it.
    parser = cbc_mnist.build_parser()
    names = {
        cbc_mnist.output_name(parser.parse_args(flags))
        for flags in (
            [],
            ["--dataset", "fashion_mnist"],
            ["-s", "flat"],
            ["-s", "patch", "--dataset", "fashion_mnist"],
        )
    }
    assert names == {
        "cbc_mnist",
        "cbc_mnist_fashion_mnist",
        "cbc_mnist_flat",
        "cbc_mnist_fashion_mnist_patch",
    }
