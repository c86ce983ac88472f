import numpy as np
import pytest

pytest.importorskip("matplotlib")

from anysma import models  # noqa: E402
from anysma.visualization import plot_relevance_matrix  # noqa: E402


def drawn_matrix(figure):
    return np.asarray(figure.axes[0].images[0].get_array())


def test_gmlvq_relevance_matrix(tmp_path, check_png):
    model = models.GMLVQ(input_dim=6, num_classes=2, projection_dim=3)
    random = np.random.RandomState(0)
    model.measuring_module.matrices.assign(random.normal(size=(6, 3)))
    path = str(tmp_path / "ccm.png")
    figure = plot_relevance_matrix(model, path=path)
    check_png(path)
    omega = np.asarray(model.measuring_module.matrices.numpy())
    np.testing.assert_allclose(drawn_matrix(figure), omega @ omega.T, rtol=1e-5)
    assert figure.axes[0].get_title() == "Classification correlation matrix Λ"
    # Centred colour scale: the sign of the entries is visible.
    low, high = figure.axes[0].images[0].get_clim()
    assert low == -high == -np.max(np.abs(omega @ omega.T))


def test_grlvq_relevances_on_the_diagonal():
    model = models.GRLVQ(input_dim=4, num_classes=2)
    figure = plot_relevance_matrix(model, title="GRLVQ")
    np.testing.assert_allclose(drawn_matrix(figure), np.diag(model.relevances))
    assert figure.axes[0].get_title() == "GRLVQ"


def test_array_input():
    matrix = np.arange(9.0).reshape(3, 3)
    np.testing.assert_array_equal(drawn_matrix(plot_relevance_matrix(matrix)), matrix)


def test_bad_input_is_reported():
    with pytest.raises(ValueError, match="square"):
        plot_relevance_matrix(np.ones((2, 3)))
    with pytest.raises(TypeError, match="one of them"):
        plot_relevance_matrix(models.LGMLVQ(input_dim=3, num_classes=2))
    with pytest.raises(TypeError, match="GMLVQ or GRLVQ"):
        plot_relevance_matrix(models.GLVQ(input_dim=3, num_classes=2))
    with pytest.raises(TypeError, match="title"):
        plot_relevance_matrix(np.eye(2), title=None)
