import importlib
import os
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import anysma  # noqa: E402
from anysma import visualization  # noqa: E402
from anysma.visualization import _figures  # noqa: E402


def test_import_without_matplotlib_names_the_extra(monkeypatch):
    for name in list(sys.modules):
        if name == "anysma.visualization" or name.startswith("anysma.visualization."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.delattr(anysma, "visualization", raising=False)
    # A None entry makes `import matplotlib` raise ImportError.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "anysma\[examples\]"'):
        importlib.import_module("anysma.visualization")


def test_public_functions_are_exported():
    for name in visualization.__all__:
        assert callable(getattr(visualization, name)), name


def test_figures_use_a_private_agg_canvas():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = visualization.plot_spectral_lines(np.eye(4), [0, 1, 0, 1])
    assert isinstance(figure.canvas, FigureCanvasAgg)
    assert figure.canvas.figure is figure


def test_save_figure_writes_png_and_creates_folders(tmp_path, check_png):
    figure = visualization.plot_spectral_lines(
        np.random.RandomState(0).rand(8, 5), np.arange(8) % 2
    )
    path = tmp_path / "new" / "folder" / "lines.png"
    returned = _figures.finish(figure, path)
    assert returned is figure
    check_png(str(path))
    with open(path, "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"


def test_failed_save_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "figure.png"
    path.write_bytes(b"old")
    figure = _figures.new_figure((2, 2))

    def broken_savefig(file, **kwargs):
        file.write(b"half an image")
        raise RuntimeError("disk full")

    figure.savefig = broken_savefig
    with pytest.raises(RuntimeError, match="disk full"):
        _figures.save_figure(figure, path)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["figure.png"]


def test_path_must_be_a_png_path(tmp_path):
    with pytest.raises(ValueError, match=r"\.png"):
        visualization.plot_spectral_lines(
            np.eye(2), [0, 1], path=str(tmp_path / "lines.pdf")
        )
    with pytest.raises(TypeError, match="path"):
        visualization.plot_spectral_lines(np.eye(2), [0, 1], path=3)
    assert os.listdir(tmp_path) == []


def test_display_stack_handles_channel_counts():
    gray = np.random.RandomState(0).rand(2, 3, 4, 1)
    np.testing.assert_array_equal(_figures.display_stack(gray), gray[..., 0])
    rgb = np.full((1, 2, 2, 3), 2.0)
    np.testing.assert_array_equal(_figures.display_stack(rgb), np.ones_like(rgb))
    stereo = np.random.RandomState(1).rand(2, 3, 4, 2)
    side_by_side = _figures.display_stack(stereo)
    assert side_by_side.shape == (2, 3, 8)
    np.testing.assert_array_equal(side_by_side[:, :, :4], stereo[..., 0])
    np.testing.assert_array_equal(side_by_side[:, :, 4:], stereo[..., 1])
