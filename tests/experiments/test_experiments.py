"""Every experiment end to end in smoke mode: train, save, test, plot.

MNIST is the real file, found through `ANYSMA_DATA_DIR` (set by
`scripts/test.sh`; skipped when absent); affNIST, CIFAR-10 and smallNORB
are small synthetic files written in their real formats. Training is cut to
a few steps with `keras.config.set_max_steps_per_epoch`, the data with
`--max_samples`.
"""

import json
import os
import shutil

import keras
import pytest

from anysma import experiments
from anysma.testing import TestCase
from anysma.testing import datasets as synthetic
from anysma.testing.datasets import real_data_file
from anysma.testing.images import check_nontrivial_png

#: The real MNIST, found through ANYSMA_DATA_DIR (scripts/test.sh sets it).
MNIST = real_data_file("mnist.npz")
NO_MNIST = "the real mnist.npz was not found in the folders of ANYSMA_DATA_DIR"

#: Experiment -> extra flags of the smoke run.
SMOKE_FLAGS = {
    "capsnet": ["--batch_size", "8", "--routings", "2"],
    "capsnet_lvq": ["--batch_size", "8", "-p"],
    "cbc_mnist": ["--batch_size", "8"],
    "efficient_capsnet_mnist": ["--batch_size", "8"],
    "em_smallnorb": ["--batch_size", "8", "--config", "small", "--routings", "2"],
    "gmlvq_tecator": ["--batch_size", "8"],
    # Pre-training needs a few samples per prototype (and 12 per class).
    "lvq_mnist": ["--batch_size", "16", "--max_samples", "300"],
    "rtlvq_mnist": ["--batch_size", "16", "--max_samples", "300"],
    "lvq_caps_mnist": ["--batch_size", "8"],
    "lvq_caps_cifar10": ["--batch_size", "8"],
    "lvq_caps_smallnorb48": ["--batch_size", "8", "--setting", "azimuth"],
    "robustness_mnist": [
        "--batch_size",
        "16",
        "--max_samples",
        "300",
        "--prototypes_per_class",
        "2",
        "--attack_steps",
        "3",
        "--attack_restarts",
        "2",
        "--attack_samples",
        "20",
    ],
}
NEEDS_MNIST = {
    "capsnet",
    "cbc_mnist",
    "capsnet_lvq",
    "efficient_capsnet_mnist",
    "lvq_mnist",
    "rtlvq_mnist",
    "lvq_caps_mnist",
    "robustness_mnist",
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A data folder with real MNIST (linked) and synthetic affNIST/CIFAR/NORB."""
    folder = tmp_path_factory.mktemp("data")
    if MNIST is not None:
        os.makedirs(folder / "mnist")
        os.symlink(MNIST, folder / "mnist" / "mnist.npz")
    synthetic.write_affnist(str(folder), num_test=24)
    synthetic.write_cifar10(str(folder), num_train=40, num_test=24)
    synthetic.write_smallnorb(str(folder), num_train=60, num_test=60)
    return str(folder)


@pytest.fixture
def two_steps():
    keras.config.set_max_steps_per_epoch(2)
    yield
    keras.config.set_max_steps_per_epoch(None)


@pytest.mark.requires_trainable_backend
# Keras warns that it cuts epochs short, and that small evaluation sets
# run out before the step limit; both are the point here.
@pytest.mark.filterwarnings("ignore:Limiting steps_per_epoch")
@pytest.mark.filterwarnings("ignore:Your input ran out of data")
@pytest.mark.parametrize("name", sorted(experiments.EXPERIMENTS))
def test_smoke_run_then_test_mode(name, data_dir, tmp_path, two_steps):
    if name in NEEDS_MNIST and MNIST is None:
        pytest.skip(NO_MNIST)
    module = experiments.get(name)
    common = ["--save_dir", str(tmp_path), "--verbose", "0", "--data_dir", data_dir]
    common += ["--max_samples", "24"] + SMOKE_FLAGS[name]  # the last one counts
    trained = module.main(["--epochs", "1", "--no_plots"] + common)
    folders = [entry for entry in os.listdir(tmp_path)]
    assert len(folders) == 1
    folder = tmp_path / folders[0]
    with open(folder / "summary.json") as stream:
        assert json.load(stream) == trained
    for file_name in ("log.csv", "final.weights.h5"):
        assert (folder / file_name).is_file(), file_name
    assert not (folder / "backup").exists()  # deleted after training
    assert trained["epochs"] == 1 and trained["plots"] == []
    accuracies = {k: v for k, v in trained.items() if k.endswith("accuracy")}
    assert accuracies and all(0.0 <= v <= 1.0 for v in accuracies.values())
    if name == "robustness_mnist":
        # An attack never beats the certificate: CTE <= LRTE <= URTE.
        errors = [
            trained[key]
            for key in (
                "clean_test_error_cte",
                "attacked_robust_error_lrte",
                "certified_robust_error_urte",
            )
        ]
        assert errors == sorted(errors) and trained["robustness_samples"] == 20
    if name in ("robustness_mnist", "gmlvq_tecator"):
        table = trained["accuracy_at_coverage"]
        assert table["1.00"]["coverage"] == 1.0
        # The nearest prototype rule and Keras' argmax of the output can
        # break float32 ties differently.
        assert table["1.00"]["accuracy"] == pytest.approx(
            trained["test_accuracy"], abs=0.01
        )
        assert all(row["coverage"] >= float(key) for key, row in table.items())

    weights = str(folder / "weights-under-test.weights.h5")
    shutil.copy(folder / "final.weights.h5", weights)
    tested = module.main(["-t", "-w", weights] + common)
    assert tested["epochs"] == 0
    for key, value in accuracies.items():
        # Same weights, same data: the evaluation must repeat exactly
        # (the gmlvq train split is augmentation-free as well).
        assert tested[key] == pytest.approx(value, abs=1e-6), key
    # The test run writes its own folder; the training record stays.
    with open(folder / "summary.json") as stream:
        assert json.load(stream) == trained
    (evaluation,) = os.listdir(folder / "evaluations")
    evaluation = folder / "evaluations" / evaluation
    with open(evaluation / "summary.json") as stream:
        assert json.load(stream) == tested
    assert tested["plots"], "test mode wrote no plots"
    for plot in tested["plots"]:
        check_nontrivial_png(str(evaluation / plot))


class ResumeTest(TestCase):
    """An interrupted run restarted with the same flags loses no epoch."""

    @pytest.mark.requires_trainable_backend
    def test_backup_and_restore_resumes_at_the_next_epoch(self):
        import tempfile

        from anysma.experiments import gmlvq_tecator

        class Interrupt(keras.callbacks.Callback):
            """Stop after the second epoch, as a killed process would."""

            def __init__(self, callbacks):
                super().__init__()
                self.callbacks = callbacks

            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    for callback in self.callbacks:
                        if isinstance(callback, keras.callbacks.CSVLogger):
                            callback.csv_file.close()  # the OS would close it
                    raise KeyboardInterrupt

        def with_interrupt(*args, **kwargs):
            callbacks = original(*args, **kwargs)
            return callbacks + [Interrupt(callbacks)]

        flags = ["--epochs", "4", "--verbose", "0", "--no_plots"]
        original = gmlvq_tecator.common.training_callbacks
        with tempfile.TemporaryDirectory() as directory:
            flags += ["--save_dir", directory]
            try:
                gmlvq_tecator.common.training_callbacks = with_interrupt
                with self.assertRaises(KeyboardInterrupt):
                    gmlvq_tecator.main(flags)
            finally:
                gmlvq_tecator.common.training_callbacks = original
            folder = os.path.join(directory, "gmlvq_tecator")
            self.assertTrue(os.path.isdir(os.path.join(folder, "backup")))
            gmlvq_tecator.main(flags)
            with open(os.path.join(folder, "log.csv")) as stream:
                epochs = [line.split(",")[0] for line in stream.read().split()[1:]]
            self.assertEqual(epochs, ["0", "1", "2", "3"])
            self.assertFalse(os.path.exists(os.path.join(folder, "backup")))


@pytest.mark.requires_trainable_backend
@pytest.mark.filterwarnings("ignore:Limiting steps_per_epoch")
@pytest.mark.filterwarnings("ignore:Your input ran out of data")
def test_lvq_caps_mnist_without_affnist(tmp_path, monkeypatch, capsys, two_steps):
    """Training, validation, weights and MNIST plots survive a missing affNIST."""
    if MNIST is None:
        pytest.skip(NO_MNIST)
    from anysma.datasets import _files

    def offline(url, *args, **kwargs):
        raise _files.DownloadError(f"Could not download {url}: offline")

    monkeypatch.setattr(_files, "download", offline)
    monkeypatch.setenv("ANYSMA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ANYSMA_DATA_DIR", raising=False)
    data_dir = tmp_path / "data" / "mnist"
    os.makedirs(data_dir)
    os.symlink(MNIST, data_dir / "mnist.npz")
    module = experiments.get("lvq_caps_mnist")
    summary = module.main(
        ["--epochs", "1", "--verbose", "0", "--batch_size", "8"]
        + ["--max_samples", "24", "--save_dir", str(tmp_path / "out")]
        + ["--data_dir", str(tmp_path / "data")]
    )
    folder = tmp_path / "out" / "lvq_caps_mnist"
    with open(folder / "summary.json") as stream:
        assert json.load(stream) == summary
    assert (folder / "final.weights.h5").is_file()
    assert 0.0 <= summary["validation_accuracy"] <= 1.0
    assert "affnist_test_accuracy" not in summary
    assert summary["affnist_test"].startswith("skipped: the affNIST test set")
    assert "affNIST test skipped" in capsys.readouterr().out
    for plot in ("spectral_lines.png", "heatmaps.png", "reconstructions.png"):
        assert plot in summary["plots"]
        check_nontrivial_png(str(folder / plot))


def test_em_smallnorb_runs_of_other_networks_get_their_own_folder():
    # An interrupted run resumes from its folder's backup: a run with another
    # split, network or number of iterations must not pick it up.
    module = experiments.get("em_smallnorb")
    parser = module.build_parser()
    names = [
        module.output_name(parser.parse_args(flags))
        for flags in ([], ["-s", "azimuth"], ["--config", "small"], ["-r", "2"])
    ]
    assert names == [
        "em_smallnorb",
        "em_smallnorb_azimuth",
        "em_smallnorb_small",
        "em_smallnorb_r2",
    ]
