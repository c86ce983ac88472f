import os

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from anysma import reject  # noqa: E402
from anysma.visualization import plot_accuracy_coverage  # noqa: E402


def lines_of(figure):
    return {line.get_label(): line for line in figure.axes[0].get_lines()}


def random_curve(seed):
    random = np.random.RandomState(seed)
    confidences = random.uniform(size=80)
    correct = random.uniform(size=80) < 0.4 + 0.6 * confidences
    return reject.accuracy_coverage_from_confidences(confidences, correct)


def test_one_curve_is_drawn_and_saved(tmp_path, check_png):
    curve = random_curve(0)
    path = str(tmp_path / "accuracy_coverage.png")
    figure = plot_accuracy_coverage(curve, path=path)
    check_png(path)
    (line,) = figure.axes[0].get_lines()
    # Drawn with increasing coverage.
    np.testing.assert_allclose(line.get_xdata(), curve.coverage[::-1])
    np.testing.assert_allclose(line.get_ydata(), curve.accuracy[::-1])
    assert figure.axes[0].get_legend() is None
    assert figure.axes[0].get_title() == "Accuracy-coverage curve"
    assert figure.axes[0].get_xlim() == (0.0, 1.02)


def test_arrays_lists_and_dicts_of_curves(tmp_path, check_png):
    coverage, accuracy = [1.0, 0.5, 0.25], [0.7, 0.9, 1.0]
    figure = plot_accuracy_coverage(
        coverage, accuracy, labels=["model"], title="Reject option"
    )
    line = lines_of(figure)["model"]
    np.testing.assert_allclose(line.get_xdata(), [0.25, 0.5, 1.0])
    np.testing.assert_allclose(line.get_ydata(), [1.0, 0.9, 0.7])
    assert figure.axes[0].get_title() == "Reject option"

    curves = {"GLVQ": random_curve(1), "RSLVQ": random_curve(2)}
    path = tmp_path / "nested" / "curves.png"
    figure = plot_accuracy_coverage(curves, path=path)
    check_png(str(path))
    lines = lines_of(figure)
    assert set(lines) == {"GLVQ", "RSLVQ"}
    np.testing.assert_allclose(
        lines["RSLVQ"].get_ydata(), curves["RSLVQ"].accuracy[::-1]
    )
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert legend == ["GLVQ", "RSLVQ"]

    figure = plot_accuracy_coverage(list(curves.values()), labels=["first", "second"])
    assert set(lines_of(figure)) == {"first", "second"}


def test_argument_errors(tmp_path):
    curve = random_curve(3)
    with pytest.raises(ValueError, match="`accuracy` must be None"):
        plot_accuracy_coverage(curve, curve.accuracy)
    with pytest.raises(ValueError, match="same length"):
        plot_accuracy_coverage([1.0, 0.5], [0.5, 0.6, 0.7])
    with pytest.raises(ValueError, match=r"fractions in \[0, 1\]"):
        plot_accuracy_coverage([1.0, 0.5], [0.5, 1.5])
    with pytest.raises(ValueError, match=r"fractions in \[0, 1\]"):
        plot_accuracy_coverage([1.0, 0.5], [0.5, np.nan])
    with pytest.raises(ValueError, match="one name per curve"):
        plot_accuracy_coverage([curve, curve], labels=["only one"])
    with pytest.raises(ValueError, match="`labels` must be None"):
        plot_accuracy_coverage({"a": curve}, labels=["b"])
    with pytest.raises(TypeError, match="`curves_or_coverage` must be"):
        plot_accuracy_coverage(3.0)
    with pytest.raises(TypeError, match="`coverage` and `accuracy`"):
        plot_accuracy_coverage([1.0, 0.5])
    with pytest.raises(ValueError, match="at least one curve"):
        plot_accuracy_coverage({})
    with pytest.raises(ValueError, match=r"\.png"):
        plot_accuracy_coverage(curve, path=str(tmp_path / "curve.pdf"))
    assert os.listdir(tmp_path) == []
