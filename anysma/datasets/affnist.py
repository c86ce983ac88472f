"""affNIST: MNIST digits under random affine transformations (Tieleman, 2013).

Only the official **test** set is loaded: `test.mat.zip` of the
"transformed" version from `https://www.cs.toronto.edu/~tijmen/affNIST/`,
320,000 images of 40×40 pixels (each of the 10,000 MNIST test digits under
32 random affine transformations). The LVQ-capsule paper trains on MNIST
only (digits centred on a 40×40 canvas, see `pad_mnist`) and uses affNIST
purely as a test of robustness to affine transformations, so its training
and validation batches are not needed. The sha256 is the one published with
TensorFlow Datasets' URL checksums for this file.

The zip holds `test.mat`, a MATLAB v5 file with the struct `affNISTdata`;
its field `image` is a uint8 matrix of shape `(1600, n)` with one image per
column, and `label_int` holds the digits `(1, n)`. Each column lists the
pixels row by row (pixel index = 40·row + column), the convention the
common readers of these files use, so image `i` is
`image[:, i].reshape(40, 40)`.
"""

import os
import zipfile

import numpy as np

from anysma.datasets import _checks
from anysma.datasets import _files

ARCHIVE_NAME = "test.mat.zip"
MAT_NAME = "test.mat"
IMAGE_SIZE = 40

SPEC = _files.DatasetSpec(
    name="affnist",
    title="affNIST (test set)",
    source="https://www.cs.toronto.edu/~tijmen/affNIST/",
    remote_files=(
        _files.RemoteFile(
            ARCHIVE_NAME,
            "https://www.cs.toronto.edu/~tijmen/affNIST/32x/transformed/test.mat.zip",
            "2cde38ec83ee2ebfd7b901f8be5a09efb17a1bda04771f9b4905751eb945c01a",
            121743191,
        ),
    ),
    layouts=(
        _files.Layout(((ARCHIVE_NAME,),), distinctive=False),
        _files.Layout(((MAT_NAME,),), distinctive=False),
    ),
)


def read_mat(stream, name="affNIST file"):
    """Decode an affNIST MATLAB file into `(images, labels)`.

    Args:
        stream: A path or a binary file object (seekable) of a `.mat` file.
        name: What to call the file in error messages.

    Returns:
        `(images, labels)`: uint8 `(n, 40, 40)` and uint8 `(n,)`.

    Raises:
        ValueError: The file is no MATLAB v5 file, or lacks the struct
            `affNISTdata` with fields `image` `(1600, n)` (integers 0-255)
            and `label_int` (integers 0-9, one per image).
    """
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        contents = loadmat(stream, variable_names=["affNISTdata"])
    except (MatReadError, ValueError, OSError, NotImplementedError) as error:
        # NotImplementedError: a MATLAB v7.3 (HDF5) file, not the official format.
        raise ValueError(f"{name} is not a readable MATLAB file: {error}") from error
    if "affNISTdata" not in contents:
        raise ValueError(f"{name} lacks the MATLAB variable 'affNISTdata'.")
    struct = contents["affNISTdata"]
    fields = struct.dtype.names or ()
    if "image" not in fields or "label_int" not in fields:
        raise ValueError(
            f"{name}: 'affNISTdata' must have the fields 'image' and 'label_int'. "
            f"Received fields: {list(fields)}"
        )
    pixels = np.asarray(struct["image"][0, 0])
    labels = np.asarray(struct["label_int"][0, 0]).reshape(-1)
    if pixels.ndim != 2 or pixels.shape[0] != IMAGE_SIZE * IMAGE_SIZE:
        raise ValueError(
            f"{name}: 'image' must have shape (1600, n). Received: {pixels.shape}"
        )
    if labels.shape != (pixels.shape[1],):
        raise ValueError(
            f"{name} has {pixels.shape[1]} images but {labels.size} labels."
        )
    # Range checks before the cast to uint8, which would wrap 300 to 44.
    try:
        images = _checks.images(
            pixels.T.reshape(-1, IMAGE_SIZE, IMAGE_SIZE),
            name,
            f"{name}: 'image'",
            (IMAGE_SIZE, IMAGE_SIZE),
            "",
        )
        labels = _checks.labels(labels, name, f"{name}: 'label_int'", 10, "")
    except _files.DamagedFileError as error:
        raise ValueError(error.problem) from None
    return images, labels


def _read_archive(path):
    try:
        with zipfile.ZipFile(path) as archive:
            members = [
                member
                for member in archive.namelist()
                if member.lower().endswith(".mat")
            ]
            named = [
                member for member in members if os.path.basename(member) == MAT_NAME
            ]
            chosen = named or members
            if len(chosen) != 1:
                raise ValueError(
                    f"{path} must contain one {MAT_NAME}. Received members: "
                    f"{archive.namelist()}"
                )
            # scipy reads straight from the (seekable) zip member.
            with archive.open(chosen[0]) as stream:
                return read_mat(stream, name=f"{chosen[0]} in {path}")
    except zipfile.BadZipFile as error:
        raise ValueError(f"{path} is not a valid zip file: {error}") from error


def load_data(data_dir=None, download=True, verbose=True):
    """Load the affNIST test set as `(x_test, y_test)`.

    Reads `test.mat.zip` (without extracting it) or the extracted
    `test.mat`. Files are looked for in `data_dir` (directly or in its
    subfolder `affnist/`), then in the subfolder `affnist/` of the folders
    of `ANYSMA_DATA_DIR` and of the cache `~/.anysma/datasets` (see
    `anysma.datasets`). Needs SciPy. The zip is checked against its
    published sha256 when it has the published size; an extracted
    `test.mat` has no published hash and is checked by content (images
    integers 0-255, labels integers 0-9, one per image).

    Args:
        data_dir: A folder, or a list of folders, to search first.
        download: Download the official file (122 MB) into the cache when
            it is not found. With `False`, a missing dataset raises at once.
        verbose: Show download progress.

    Returns:
        Tuple of NumPy arrays `(x_test, y_test)`: `x_test` uint8
        `(320000, 40, 40)`, `y_test` uint8 `(320000,)` with values 0-9.

    Raises:
        anysma.datasets.DatasetNotFoundError: The file is not on disk and
            downloading is off or failed; the message says where to put it.
        anysma.datasets.DamagedFileError: The file is damaged or not the
            affNIST test set (a `ValueError` naming it and how to get a good
            copy).
        ValueError: A downloaded file has the wrong sha256.

    Example (not run by the test suite: it needs the dataset files, or a
    download):

    >>> x_test, y_test = load_data(data_dir="data")  # doctest: +SKIP
    >>> x_test.shape  # doctest: +SKIP
    (320000, 40, 40)
    """
    layout_index, paths = _files.fetch(SPEC, data_dir, download, verbose=verbose)
    # scipy and zipfile raise many kinds of errors for damaged bytes.
    errors = (*_files.DECODE_ERRORS, TypeError, IndexError, KeyError, MemoryError)
    with _files.damage_guard(paths[0], _files.remedy(SPEC), errors):
        if layout_index == 0:
            return _read_archive(paths[0])
        return read_mat(paths[0], name=paths[0])


def pad_mnist(images):
    """Centre 28×28 MNIST digits on a 40×40 black canvas, as affNIST does.

    affNIST's "centred" version adds a border of 6 background pixels; the
    LVQ-capsule paper trains on such images to test on affNIST.

    Args:
        images: Array `(n, 28, 28)` or `(n, 28, 28, channels)`.

    Returns:
        Array `(n, 40, 40)` or `(n, 40, 40, channels)` of the same dtype.
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4) or images.shape[1:3] != (28, 28):
        raise ValueError(
            "`images` must have shape (n, 28, 28) or (n, 28, 28, channels). "
            f"Received: images.shape={images.shape}"
        )
    border = (IMAGE_SIZE - 28) // 2
    padding = [(0, 0), (border, border), (border, border)]
    padding += [(0, 0)] * (images.ndim - 3)
    return np.pad(images, padding)
