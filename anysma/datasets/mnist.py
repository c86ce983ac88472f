"""MNIST handwritten digits (LeCun, Cortes and Burges).

70,000 grey-scale 28×28 images of the digits 0-9, split 60,000 / 10,000.
The files are the original IDX files, downloaded from Google's copy of
them (`https://storage.googleapis.com/cvdf-datasets/mnist/`, the mirror
TensorFlow Datasets uses; the original host `yann.lecun.com` is often
unreachable). The sha256 values are those published with TensorFlow
Datasets' URL checksums. MNIST is commonly distributed under CC BY-SA 3.0.
"""

from anysma.datasets import _files
from anysma.datasets import _idx

_BASE_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"

SPEC = _files.DatasetSpec(
    name="mnist",
    title="MNIST",
    source="http://yann.lecun.com/exdb/mnist/",
    remote_files=(
        _files.RemoteFile(
            "train-images-idx3-ubyte.gz",
            _BASE_URL + "train-images-idx3-ubyte.gz",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            9912422,
        ),
        _files.RemoteFile(
            "train-labels-idx1-ubyte.gz",
            _BASE_URL + "train-labels-idx1-ubyte.gz",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            28881,
        ),
        _files.RemoteFile(
            "t10k-images-idx3-ubyte.gz",
            _BASE_URL + "t10k-images-idx3-ubyte.gz",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            1648877,
        ),
        _files.RemoteFile(
            "t10k-labels-idx1-ubyte.gz",
            _BASE_URL + "t10k-labels-idx1-ubyte.gz",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            4542,
        ),
    ),
    layouts=(
        _files.Layout(
            tuple((name + ".gz", name) for name in _idx.IDX_FILE_NAMES),
            distinctive=False,
        ),
        _files.Layout((("mnist.npz",),), distinctive=True),
    ),
)


def load_data(data_dir=None, download=True, verbose=True):
    """Load MNIST as `(x_train, y_train), (x_test, y_test)`.

    Reads the four official IDX files (gzipped or not) or, as an offline
    alternative, an `mnist.npz` in the layout of `keras.datasets.mnist`
    (keys `x_train, y_train, x_test, y_test`). Where the files are looked
    for, and where they are downloaded to, is described in
    `anysma.datasets` (`data_dir`, then `ANYSMA_DATA_DIR`, then the cache
    `~/.anysma/datasets`).

    Args:
        data_dir: A folder, or a list of folders, to search first. Files may
            lie in it directly or in its subfolder `mnist/`.
        download: Download the official files into the cache when they are
            not found. With `False`, a missing dataset raises at once.
        verbose: Show download progress.

    Returns:
        Tuple of NumPy arrays `(x_train, y_train), (x_test, y_test)`:
        `x_train` uint8 `(60000, 28, 28)`, `y_train` uint8 `(60000,)` with
        values 0-9, `x_test` uint8 `(10000, 28, 28)`, `y_test` uint8
        `(10000,)`.

    Raises:
        anysma.datasets.DatasetNotFoundError: The files are not on disk and
            downloading is off or failed; the message says where to put them.
        ValueError: A file is damaged (bad magic number, truncated, or a
            downloaded file with the wrong sha256).

    Example:

    >>> (x_train, y_train), (x_test, y_test) = load_data()  # doctest: +SKIP
    >>> x_train.shape  # doctest: +SKIP
    (60000, 28, 28)
    """
    return _idx.load_idx_dataset(SPEC, data_dir, download, verbose=verbose)
