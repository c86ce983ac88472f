import keras
import numpy as np
import pytest

pytest.importorskip("matplotlib")

from anysma import losses  # noqa: E402
from anysma import models  # noqa: E402
from anysma.visualization import load_training_log  # noqa: E402
from anysma.visualization import plot_training_curves  # noqa: E402


def curves_of(figure):
    return {
        (axes.get_title(), line.get_label()): line.get_ydata()
        for axes in figure.axes
        for line in axes.get_lines()
    }


def test_dict_log(tmp_path, check_png):
    log = {
        "loss": [1.0, 0.6, 0.4],
        "val_loss": [1.1, 0.8, 0.7],
        "accuracy": [0.5, 0.7, 0.9],
        "val_accuracy": [0.4, 0.6, 0.8],
        "val_only": [3.0, 2.0, 1.0],
    }
    path = str(tmp_path / "curves.png")
    figure = plot_training_curves(log, path=path)
    check_png(path)
    curves = curves_of(figure)
    assert set(curves) == {
        ("loss", "training"),
        ("loss", "validation"),
        ("accuracy", "training"),
        ("accuracy", "validation"),
        ("only", "validation"),
    }
    np.testing.assert_array_equal(curves["loss", "validation"], log["val_loss"])
    np.testing.assert_array_equal(curves["accuracy", "training"], log["accuracy"])
    line = figure.axes[0].get_lines()[0]
    np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3])


@pytest.mark.requires_trainable_backend
def test_history_and_csv_logger_of_a_fit(tmp_path):
    random = np.random.RandomState(0)
    x = random.rand(16, 3).astype("float32")
    y = keras.utils.to_categorical(np.arange(16) % 2, 2)
    model = models.GLVQ(input_dim=3, num_classes=2)
    model.compile("adam", loss=losses.GlvqLoss(), metrics=["accuracy"])
    csv_path = str(tmp_path / "log.csv")
    history = model.fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        validation_data=(x, y),
        callbacks=[keras.callbacks.CSVLogger(csv_path)],
        verbose=0,
    )
    from_history = load_training_log(history)
    from_csv = load_training_log(csv_path)
    assert "epoch" not in from_csv
    for name in ("loss", "val_loss", "accuracy", "val_accuracy"):
        np.testing.assert_allclose(from_csv[name], history.history[name], rtol=1e-5)
        np.testing.assert_allclose(from_history[name], history.history[name])
    curves = curves_of(plot_training_curves(csv_path))
    np.testing.assert_allclose(
        curves["loss", "training"], history.history["loss"], rtol=1e-5
    )


def test_missing_csv_values_become_nan(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss,val_loss\n0,1.0,NA\n1,0.5,0.7\n")
    curves = load_training_log(str(path))
    assert np.isnan(curves["val_loss"][0]) and curves["val_loss"][1] == 0.7
    np.testing.assert_array_equal(curves["loss"], [1.0, 0.5])


def test_bad_logs_are_reported(tmp_path):
    with pytest.raises(ValueError, match="not a file"):
        plot_training_curves(str(tmp_path / "missing.csv"))
    with pytest.raises(TypeError, match="log"):
        plot_training_curves([1.0, 2.0])
    with pytest.raises(ValueError, match="no values"):
        plot_training_curves({"epoch": [0, 1]})
    bad = tmp_path / "bad.csv"
    bad.write_text("loss\nabc\n")
    with pytest.raises(ValueError, match="loss"):
        load_training_log(str(bad))
