import os

# isort: off
# Import torch before TensorFlow-linked libraries; the other order can crash.
try:  # noqa: SIM105
    import torch  # noqa: F401
except ImportError:
    pass

import anysma  # noqa: F401  (selects the backend before Keras loads)
import keras
import pytest

# isort: on


def pytest_addoption(parser):
    parser.addoption(
        "--run-large", action="store_true", default=False, help="run `large` tests"
    )


def pytest_configure(config):
    os.environ.setdefault("PYTHONHASHSEED", "0")


def pytest_collection_modifyitems(config, items):
    trainable = keras.backend.backend() not in ("numpy", "openvino")
    skip_large = pytest.mark.skip(reason="large test; pass --run-large to run it")
    skip_untrainable = pytest.mark.skip(reason="backend cannot train")
    for item in items:
        if "large" in item.keywords and not config.getoption("--run-large"):
            item.add_marker(skip_large)
        if "requires_trainable_backend" in item.keywords and not trainable:
            item.add_marker(skip_untrainable)


@pytest.fixture(autouse=True)
def _seeded_doctests(request):
    """Docstring examples run seeded, in a scratch folder, with `np` at hand.

    Only doctest items are touched: examples that draw random numbers or
    write files then give the same output on every run and leave nothing in
    the checkout.
    """
    if not isinstance(request.node, pytest.DoctestItem):
        yield
        return
    import numpy

    keras.utils.set_random_seed(0)
    request.node.dtest.globs.setdefault("np", numpy)
    folder = request.getfixturevalue("tmp_path")
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)
