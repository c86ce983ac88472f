"""Fault injection: no earlier result is ever lost, every failure is clear.

Each test damages a run on purpose (a kill while the backup is written, a
kill between epochs, a diverging loss, bad flags, a failed re-run, damaged
or foreign weights) and checks that every file written before is intact
and that the error says what happened. The experiment is `gmlvq_tecator`
(the shipped Tecator data, seconds per run).
"""

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from anysma import cli
from anysma.experiments import common
from anysma.experiments import gmlvq_tecator

NAME = gmlvq_tecator.NAME


def snapshot(folder):
    """`{relative path: sha256}` of every file below `folder`."""
    hashes = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as stream:
                hashes[os.path.relpath(path, folder)] = hashlib.sha256(
                    stream.read()
                ).hexdigest()
    return hashes


def logged_epochs(folder):
    with open(os.path.join(folder, "log.csv")) as stream:
        return [line.split(",")[0] for line in stream.read().split()[1:]]


def flags(save_dir, *extra, epochs=2):
    return [
        "--epochs",
        str(epochs),
        "--verbose",
        "0",
        "--no_plots",
        "--save_dir",
        str(save_dir),
        *extra,
    ]


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    """A finished two-epoch run (not to be changed: see `trained`)."""
    save_dir = tmp_path_factory.mktemp("runs")
    gmlvq_tecator.main(flags(save_dir))
    folder = save_dir / NAME
    return folder, snapshot(folder)


@pytest.fixture
def trained(tmp_path, trained_once):
    """A copy of `trained_once` in `tmp_path` and the hashes of its files."""
    folder = tmp_path / NAME
    shutil.copytree(trained_once[0], folder)
    return folder, trained_once[1]


# === Bad flags are rejected before anything is touched ===


@pytest.mark.parametrize(
    "bad",
    [
        ["--epochs", "-1"],
        ["--epochs", "0"],
        ["--lr", "-1"],
        ["--lr", "0"],
        ["--lr", "nan"],
        ["--lr", "inf"],
        ["--batch_size", "0"],
        ["--batch_size", "-4"],
        ["--max_samples", "0"],
        ["--seed", "-1"],
        ["--epochs", "two"],
    ],
)
def test_bad_flags_exit_2_and_keep_the_earlier_run(bad, trained_once, capsys):
    folder, before = trained_once
    with pytest.raises(SystemExit) as raised:
        cli.main(["run", NAME] + flags(folder.parent) + bad)
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {bad[0]}" in error and "Received" in error
    assert snapshot(folder) == before


@pytest.mark.parametrize(
    "name, bad",
    [
        ("capsnet", ["--routings", "0"]),
        ("capsnet", ["--lam_recon", "-0.5"]),
        ("capsnet", ["--digit", "10"]),
    ],
)
def test_capsule_flags_are_range_checked(name, bad, capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(["run", name] + bad)
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert "argument" in error and bad[0] in error and "Received" in error


# === Re-runs never remove an earlier run's files ===


@pytest.mark.requires_trainable_backend
def test_failed_rerun_keeps_the_earlier_run(trained, tmp_path, capsys):
    folder, before = trained
    missing = str(tmp_path / "no-such.weights.h5")
    assert cli.main(["run", NAME] + flags(tmp_path, "-w", missing)) == 1
    assert "no-such.weights.h5" in capsys.readouterr().err
    assert snapshot(folder) == before


@pytest.mark.requires_trainable_backend
def test_new_run_moves_the_earlier_run_to_previous(trained, tmp_path):
    folder, before = trained
    gmlvq_tecator.main(flags(tmp_path, epochs=1))
    archived = os.listdir(folder / common.PREVIOUS_FOLDER)
    assert len(archived) == 1
    moved = snapshot(folder / common.PREVIOUS_FOLDER / archived[0])
    assert moved == before
    assert logged_epochs(folder) == ["0"]


@pytest.mark.requires_trainable_backend
def test_test_and_plot_runs_write_their_own_folders(trained, tmp_path):
    folder, before = trained
    weights = str(folder / "final.weights.h5")
    assert cli.main(["test", NAME, "-w", weights, "--save_dir", str(tmp_path)]) == 0
    assert cli.main(["plot", NAME, "-w", weights, "--save_dir", str(tmp_path)]) == 0
    after = snapshot(folder)
    kept = {path: digest for path, digest in after.items() if path in before}
    assert kept == before, "a test or plot run changed the training record"
    evaluations = sorted(os.listdir(folder / common.EVALUATIONS_FOLDER))
    assert len(evaluations) == 2
    plotted = folder / common.EVALUATIONS_FOLDER / evaluations[1]
    assert (plotted / "summary.json").is_file()
    assert (plotted / "CCM_Tecator.png").is_file()


# === Resuming ===


class Interrupt(keras.callbacks.Callback):
    """Raise after epoch `epoch`, as a killed process would stop."""

    def __init__(self, callbacks, epoch):
        super().__init__()
        self.callbacks = callbacks
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            for callback in self.callbacks:
                if isinstance(callback, keras.callbacks.CSVLogger):
                    callback.csv_file.close()  # the OS would close it
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def interrupted_once(tmp_path_factory):
    """A four-epoch run stopped after its third epoch (not to be changed)."""
    save_dir = tmp_path_factory.mktemp("interrupted")
    original = common.training_callbacks

    def with_interrupt(*args, **kwargs):
        callbacks = original(*args, **kwargs)
        return callbacks + [Interrupt(callbacks, 2)]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(common, "training_callbacks", with_interrupt)
        with pytest.raises(KeyboardInterrupt):
            gmlvq_tecator.main(flags(save_dir, epochs=4))
    return save_dir / NAME


@pytest.fixture
def interrupted(tmp_path, interrupted_once):
    """A copy of `interrupted_once` in `tmp_path`."""
    folder = tmp_path / NAME
    shutil.copytree(interrupted_once, folder)
    return folder


@pytest.mark.requires_trainable_backend
def test_resume_keeps_the_best_model_of_before_the_interruption(interrupted, tmp_path):
    folder = interrupted
    # Pretend the model in best.weights.h5 scored perfectly before the
    # interruption: no later epoch may replace it.
    log = folder / "log.csv"
    lines = log.read_text().splitlines()
    header = lines[0].split(",")
    column = header.index("val_accuracy")
    row = lines[1].split(",")
    row[column] = "1.0"
    lines[1] = ",".join(row)
    log.write_text("\n".join(lines) + "\n")
    best = snapshot(folder)["best.weights.h5"]
    gmlvq_tecator.main(flags(tmp_path, epochs=4))
    assert logged_epochs(folder) == ["0", "1", "2", "3"]
    assert snapshot(folder)["best.weights.h5"] == best


@pytest.mark.requires_trainable_backend
def test_unreadable_newest_backup_falls_back_to_the_previous(interrupted, tmp_path):
    folder = interrupted
    backup = folder / common.BACKUP_FOLDER
    weights = sorted(name for name in os.listdir(backup) if name.endswith(".h5"))
    assert len(weights) == 2  # this epoch's and the previous one
    newest = max(weights, key=lambda name: os.path.getmtime(backup / name))
    (backup / newest).write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.warns(UserWarning, match="cannot be read"):
        gmlvq_tecator.main(flags(tmp_path, epochs=4))
    # Epoch 2 was lost with its backup and is trained again.
    assert logged_epochs(folder) == ["0", "1", "2", "2", "3"]
    assert (folder / "summary.json").is_file()


@pytest.mark.requires_trainable_backend
def test_all_backups_unreadable_is_a_clear_error_and_deletes_nothing(
    interrupted, tmp_path
):
    folder = interrupted
    backup = folder / common.BACKUP_FOLDER
    for name in os.listdir(backup):
        if name.endswith(".h5"):
            (backup / name).write_bytes(b"damaged")
    before = snapshot(folder)
    with pytest.warns(UserWarning):
        with pytest.raises(ValueError, match="cannot be read.*Move the folder"):
            gmlvq_tecator.main(flags(tmp_path, epochs=4))
    assert snapshot(folder) == before


KILL_WHILE_BACKING_UP = textwrap.dedent(
    """
    import os, signal, sys
    import keras
    from anysma.experiments import gmlvq_tecator

    save_weights = keras.Model.save_weights
    writes = []

    def killed_while_writing(self, filepath, *args, **kwargs):
        if os.sep + "backup" + os.sep in str(filepath):
            writes.append(filepath)
            if len(writes) == 3:
                # Half a file on disk, then the process dies.
                with open(filepath, "wb") as stream:
                    stream.write(b"\\x89HDF\\r\\n\\x1a\\n" + bytes(100))
                os.kill(os.getpid(), signal.SIGKILL)
        return save_weights(self, filepath, *args, **kwargs)

    keras.Model.save_weights = killed_while_writing
    gmlvq_tecator.main(sys.argv[1:])
    """
)


@pytest.mark.requires_trainable_backend
def test_sigkill_while_the_backup_is_written_leaves_a_resumable_run(tmp_path):
    run_flags = flags(tmp_path, epochs=4)
    killed = subprocess.run(
        [sys.executable, "-c", KILL_WHILE_BACKING_UP, *run_flags],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    folder = tmp_path / NAME
    assert logged_epochs(folder) == ["0", "1"]
    summary = gmlvq_tecator.main(run_flags)
    assert logged_epochs(folder) == ["0", "1", "2", "3"]
    assert summary["epochs"] == 4
    assert not (folder / common.BACKUP_FOLDER).exists()


# === Divergence ===


class Diverge(keras.callbacks.Callback):
    """Turn one weight into NaN at the start of epoch `epoch`.

    (At an epoch's start every backend reads the weights afresh, so the
    NaN reaches the next training step.)
    """

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            variable = self.model.trainable_variables[0]
            poisoned = np.array(keras.ops.convert_to_numpy(variable), copy=True)
            poisoned.flat[0] = np.nan
            variable.assign(poisoned)


@pytest.mark.requires_trainable_backend
def test_diverged_training_stops_and_saves_nothing_as_best(
    monkeypatch, trained, tmp_path, capsys
):
    folder, before = trained
    original = common.training_callbacks

    def diverging(*args, **kwargs):
        return original(*args, **kwargs) + [Diverge(epoch=1)]

    monkeypatch.setattr(common, "training_callbacks", diverging)
    exit_code = cli.main(["run", NAME] + flags(tmp_path, epochs=3))
    assert exit_code == 1
    assert "Training diverged" in capsys.readouterr().err
    assert logged_epochs(folder) == ["0", "1"]  # stopped in epoch 1
    assert not (folder / "final.weights.h5").exists()
    assert not (folder / "summary.json").exists()
    # The best model is epoch 0's: finite, whatever epoch 1 scored.
    model = gmlvq_tecator.build_model(1e-3)
    common.load_weights(model, str(folder / "best.weights.h5"))
    for variable in model.weights:
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(variable)))
    (archived,) = os.listdir(folder / common.PREVIOUS_FOLDER)
    assert snapshot(folder / common.PREVIOUS_FOLDER / archived) == before


def test_nan_inputs_are_rejected_before_training():
    from anysma.models import GLVQ

    model = GLVQ(input_dim=3, num_classes=2)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.zeros((6, 3), "float32")
    x[4, 1] = np.nan
    y = np.eye(2, dtype="float32")[[0, 1, 0, 1, 0, 1]]
    with pytest.raises(ValueError, match="NaN or infinity.*index 4"):
        model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="finite values"):
        model.predict(x, verbose=0)
    x[4, 1] = np.inf
    with pytest.raises(ValueError, match="finite values"):
        model.evaluate(x, y, verbose=0)


# === Weights that do not fit ===


def test_damaged_weights_file_is_a_clear_error(tmp_path):
    model = gmlvq_tecator.build_model(1e-3)
    damaged = tmp_path / "damaged.weights.h5"
    damaged.write_bytes(b"not an HDF5 file")
    with pytest.raises(ValueError, match="damaged"):
        common.load_weights(model, str(damaged))


@pytest.mark.requires_trainable_backend
def test_weights_of_another_architecture_name_the_mismatch(tmp_path):
    from anysma.models import GLVQ

    other = GLVQ(input_dim=3, num_classes=2)
    other(np.zeros((1, 3), "float32"))
    path = str(tmp_path / "other.weights.h5")
    other.save_weights(path)
    model = gmlvq_tecator.build_model(1e-3)
    with pytest.raises(ValueError, match="does not fit this experiment's model"):
        common.load_weights(model, path)
