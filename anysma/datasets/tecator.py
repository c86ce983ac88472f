"""The Tecator meat spectra, shipped with anysma (no download needed).

215 near-infrared absorbance spectra (100 channels, 850-1050 nm) of meat
samples with their water, fat and protein content, measured on a Tecator
Infratec Food and Feed Analyzer. Source: the StatLib datasets archive; see
`data/TECATOR_NOTICE.txt` for the permission note that accompanies the data.
"""

import hashlib
import os

import numpy as np

FILE_SHA256 = "3a4029f2999ba5808cf21be7d954249649b2251e35584205f15d33e754bf7255"
#: The original distribution's split: 129 training, 43 monitoring, 43 test rows.
NUM_TRAIN, NUM_MONITOR, NUM_TEST = 129, 43, 43
FAT_THRESHOLD = 20.0
ENDPOINTS = ("water", "fat", "protein")


def _path():
    return os.path.join(os.path.dirname(__file__), "data", "tecator.npz")


def load_arrays(verify=True):
    """Return all 215 spectra `(215, 100)` and endpoints `(215, 3)`.

    Args:
        verify: Check the shipped file's sha256 first.
    """
    path = _path()
    if verify:
        with open(path, "rb") as data_file:
            digest = hashlib.sha256(data_file.read()).hexdigest()
        if digest != FILE_SHA256:
            raise OSError(
                f"The shipped Tecator file is corrupted (sha256 {digest}, "
                f"expected {FILE_SHA256}); reinstall anysma."
            )
    with np.load(path, allow_pickle=False) as data:
        return data["absorp"].astype("float32"), data["endpoints"].astype("float32")


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
