"""The Tecator meat spectra, shipped with anysma (no download needed).

215 near-infrared absorbance spectra (100 channels, 850-1050 nm) of meat
samples with their water, fat and protein content, measured on a Tecator
Infratec Food and Feed Analyzer. Source: the StatLib datasets archive; see
`data/TECATOR_NOTICE.txt` for the permission note that accompanies the data.
"""

import os

import numpy as np

from anysma.datasets import _files

FILE_SHA256 = "3a4029f2999ba5808cf21be7d954249649b2251e35584205f15d33e754bf7255"
#: How to get a good copy of the shipped file.
REMEDY = (
    "It ships with anysma: reinstall anysma (e.g. `pip install --force-reinstall "
    "anysma`) to get a good copy."
)
#: The original distribution's split: 129 training, 43 monitoring, 43 test rows.
NUM_TRAIN, NUM_MONITOR, NUM_TEST = 129, 43, 43
FAT_THRESHOLD = 20.0
ENDPOINTS = ("water", "fat", "protein")


def _path():
    return os.path.join(os.path.dirname(__file__), "data", "tecator.npz")


def verify_file():
    """Check the shipped file's sha256 (cached per process).

    Raises:
        anysma.datasets.DamagedFileError: The digest differs from
            `FILE_SHA256`.
    """
    path = _path()
    digest = _files.cached_file_sha256(path)
    if digest != FILE_SHA256:
        raise _files.DamagedFileError(
            path,
            f"the shipped Tecator file has the sha256 {digest}, expected {FILE_SHA256}",
            REMEDY,
        )


def load_arrays(verify=True):
    """Return all 215 spectra `(215, 100)` and endpoints `(215, 3)`, float32.

    Args:
        verify: Check the shipped file's sha256 first. Without it, the
            content is still checked: shapes `(215, 100)` and `(215, 3)`,
            finite real numbers.

    Raises:
        anysma.datasets.DamagedFileError: The file is damaged (a
            `ValueError` naming it and saying how to get a good copy).
    """
    path = _path()
    if verify:
        verify_file()
    spectra, endpoints = _files.read_npz(path, ("absorp", "endpoints"), REMEDY)
    for what, array, shape in (
        ("absorp", spectra, (215, 100)),
        ("endpoints", endpoints, (215, 3)),
    ):
        if array.shape != shape or array.dtype.kind not in "iuf":
            raise _files.DamagedFileError(
                path,
                f"'{what}' must be real numbers of shape {shape}. Received: "
                f"{array.dtype} of shape {array.shape}",
                REMEDY,
            )
        if not np.all(np.isfinite(array)):
            raise _files.DamagedFileError(
                path, f"'{what}' holds values that are not finite", REMEDY
            )
    return spectra.astype("float32"), endpoints.astype("float32")


def load_data(task="classification"):
    """Load Tecator as `(x_train, y_train), (x_test, y_test)`.

    The first 172 rows (the original training and monitoring sets) are the
    training split, the last 43 rows the test split.

    Args:
        task: `"classification"`: labels are `1` for fat content > 20 %
            (77 of 215 samples) and `0` otherwise; `"regression"`: targets
            are the `(water, fat, protein)` percentages.

    Returns:
        Tuple of NumPy arrays `(x_train, y_train), (x_test, y_test)` with
        `x` of shape `(n, 100)` (float32).
    """
    if task not in ("classification", "regression"):
        raise ValueError(
            f"`task` must be 'classification' or 'regression'. Received: task={task!r}"
        )
    spectra, endpoints = load_arrays()
    if task == "classification":
        targets = (endpoints[:, 1] > FAT_THRESHOLD).astype("int64")
    else:
        targets = endpoints
    split = NUM_TRAIN + NUM_MONITOR
    return (spectra[:split], targets[:split]), (spectra[split:], targets[split:])
