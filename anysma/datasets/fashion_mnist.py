"""Fashion-MNIST: Zalando's article images (Xiao, Rasul and Vollgraf, 2017).

70,000 grey-scale 28×28 images of 10 clothing classes, split 60,000 /
10,000, stored in the same IDX format as MNIST. The official host named in the
dataset's README (`http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/`)
serves plain http only, so the files are downloaded over https from the
copy `keras.datasets.fashion_mnist` uses
(`https://storage.googleapis.com/tensorflow/tf-keras-datasets/`), which
holds the same files (same sizes). The sha256 values are those TensorFlow
Datasets publishes for the official files; every download is checked
against them. Fashion-MNIST is released under the MIT license by Zalando SE.

No sha256 is published for a `fashion_mnist.npz` (Keras has none), so such
a file is checked by its content, including Fashion-MNIST's official class
counts (6,000 / 1,000 per class) when it holds all 70,000 images, which
tell it apart from MNIST.

Class indices: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat,
5 Sandal, 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot.
"""

from anysma.datasets import _files
from anysma.datasets import _idx

_BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

SPEC = _files.DatasetSpec(
    name="fashion_mnist",
    title="Fashion-MNIST",
    source="https://github.com/zalandoresearch/fashion-mnist",
    remote_files=(
        _files.RemoteFile(
            "train-images-idx3-ubyte.gz",
            _BASE_URL + "train-images-idx3-ubyte.gz",
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            26421880,
        ),
        _files.RemoteFile(
            "train-labels-idx1-ubyte.gz",
            _BASE_URL + "train-labels-idx1-ubyte.gz",
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            29515,
        ),
        _files.RemoteFile(
            "t10k-images-idx3-ubyte.gz",
            _BASE_URL + "t10k-images-idx3-ubyte.gz",
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            4422102,
        ),
        _files.RemoteFile(
            "t10k-labels-idx1-ubyte.gz",
            _BASE_URL + "t10k-labels-idx1-ubyte.gz",
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            5148,
        ),
    ),
    layouts=(
        _files.Layout(
            tuple((name + ".gz", name) for name in _idx.IDX_FILE_NAMES),
            distinctive=False,
        ),
        _files.Layout((("fashion_mnist.npz",),), distinctive=True),
    ),
    aliases=("fashion-mnist",),
)
#: Images per class 0-9 of the official training and test sets.
CLASS_COUNTS = _idx.OFFICIAL_CLASS_COUNTS["Fashion-MNIST"]


def load_data(data_dir=None, download=True, verbose=True):
    """Load Fashion-MNIST as `(x_train, y_train), (x_test, y_test)`.

    Reads the four official IDX files (gzipped or not) or, as an offline
    alternative, a `fashion_mnist.npz` in the layout of
    `keras.datasets.fashion_mnist` (keys `x_train, y_train, x_test,
    y_test`). Files are looked for in `data_dir`, then in the folders of
    `ANYSMA_DATA_DIR`, then in the cache `~/.anysma/datasets` (see
    `anysma.datasets`).

    What is loaded is checked: the official gzipped IDX files against their
    published sha256 (a file with another dataset's published digest, such
    as one of MNIST's, is refused); uncompressed IDX files and a
    `fashion_mnist.npz` have no published hash and are checked by content:
    images integers 0-255 of shape `(n, 28, 28)`, labels integers 0-9,
    equally many of both, and for the full dataset the official class
    counts.

    Args:
        data_dir: A folder, or a list of folders, to search first. Files may
            lie in it directly or in its subfolder `fashion_mnist/` (or
            `fashion-mnist/`).
        download: Download the official files into the cache when they are
            not found. With `False`, a missing dataset raises at once.
        verbose: Show download progress.

    Returns:
        Tuple of NumPy arrays `(x_train, y_train), (x_test, y_test)`:
        `x_train` uint8 `(60000, 28, 28)`, `y_train` uint8 `(60000,)` with
        values 0-9 (see `CLASS_NAMES`), `x_test` uint8 `(10000, 28, 28)`,
        `y_test` uint8 `(10000,)`.

    Raises:
        anysma.datasets.DatasetNotFoundError: The files are not on disk and
            downloading is off or failed; the message says where to put them.
        anysma.datasets.DamagedFileError: A file is damaged or not
            Fashion-MNIST's (truncated, undecodable, wrong sha256, shapes,
            labels or class counts); a `ValueError` naming the file.
        ValueError: A downloaded file has the wrong sha256.

    Example (not run by the test suite: it needs the dataset files, or a
    download):

    >>> (x_train, y_train), _ = load_data(data_dir="data")  # doctest: +SKIP
    >>> CLASS_NAMES[y_train[0]]  # doctest: +SKIP
    'Ankle boot'
    """
    return _idx.load_idx_dataset(SPEC, data_dir, download, verbose=verbose)
