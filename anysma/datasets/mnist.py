"""MNIST handwritten digits (LeCun, Cortes and Burges).

70,000 grey-scale 28×28 images of the digits 0-9, split 60,000 / 10,000.
The files are the original IDX files, downloaded from Google's copy of
them (`https://storage.googleapis.com/cvdf-datasets/mnist/`, the mirror
TensorFlow Datasets uses; the original host `yann.lecun.com` is often
unreachable). The sha256 values are those published with TensorFlow
Datasets' URL checksums. MNIST is commonly distributed under CC BY-SA 3.0.

A local `mnist.npz` is checked against the sha256 that
`keras.datasets.mnist` publishes for its file (`KERAS_NPZ`); another
`mnist.npz` (e.g. a conversion of your own) has no published hash and is
checked by its content, including MNIST's official class counts
(`CLASS_COUNTS`) when it holds all 70,000 images, which tell it apart from
Fashion-MNIST.
"""

from anysma.datasets import _files
from anysma.datasets import _idx

_BASE_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"

#: The `mnist.npz` of `keras.datasets.mnist`, with the sha256 Keras checks.
KERAS_NPZ = _files.RemoteFile(
    "mnist.npz",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
    "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    11490434,
)
#: Images per class 0-9 of the official training and test sets.
CLASS_COUNTS = _idx.OFFICIAL_CLASS_COUNTS["MNIST"]

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
    published=(KERAS_NPZ,),
)


def load_data(data_dir=None, download=True, verbose=True):
    """Load MNIST as `(x_train, y_train), (x_test, y_test)`.

    Reads the four official IDX files (gzipped or not) or, as an offline
    alternative, an `mnist.npz` in the layout of `keras.datasets.mnist`
    (keys `x_train, y_train, x_test, y_test`). Where the files are looked
    for, and where they are downloaded to, is described in
    `anysma.datasets` (`data_dir`, then `ANYSMA_DATA_DIR`, then the cache
    `~/.anysma/datasets`).

    What is loaded is checked: the official gzipped IDX files and Keras'
    `mnist.npz` against their published sha256 (a file with another
    dataset's published digest, such as Fashion-MNIST's, is refused);
    uncompressed IDX files and other `.npz` files have no published hash
    and are checked by content: images integers 0-255 of shape
    `(n, 28, 28)`, labels integers 0-9, equally many of both, and for the
    full dataset MNIST's official class counts.

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
        anysma.datasets.DamagedFileError: A file is damaged or not MNIST's
            (truncated, undecodable, wrong sha256, shapes, labels or class
            counts); a `ValueError` naming the file and how to replace it.
        ValueError: A downloaded file has the wrong sha256.

    Example (not run by the test suite: it needs the dataset files, or a
    download):

    >>> (x_train, y_train), (x_test, y_test) = load_data()  # doctest: +SKIP
    >>> x_train.shape  # doctest: +SKIP
    (60000, 28, 28)
    """
    return _idx.load_idx_dataset(SPEC, data_dir, download, verbose=verbose)
