"""CIFAR-10: 60,000 32×32 colour images in 10 classes (Krizhevsky, 2009).

The "python version" from the dataset's page
(`https://www.cs.toronto.edu/~kriz/cifar.html`): a tarball holding six
pickled batches (`data_batch_1` … `data_batch_5`, `test_batch`) of 10,000
images each, plus `batches.meta`. The sha256 of the tarball is the one
`keras.datasets.cifar10` checks.

The batches were pickled by Python 2. They are read with an unpickler that
resolves only the three NumPy names a pickled `uint8` array needs, so a
tampered file cannot run code while loading.

Class indices: 0 airplane, 1 automobile, 2 bird, 3 cat, 4 deer, 5 dog,
6 frog, 7 horse, 8 ship, 9 truck.
"""

import io
import pickle
import tarfile

import numpy as np

from anysma.datasets import _checks
from anysma.datasets import _files

ARCHIVE_NAME = "cifar-10-python.tar.gz"
FOLDER_NAME = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{index}" for index in range(1, 6))
TEST_BATCH = "test_batch"
CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

SPEC = _files.DatasetSpec(
    name="cifar10",
    title="CIFAR-10",
    source="https://www.cs.toronto.edu/~kriz/cifar.html",
    remote_files=(
        _files.RemoteFile(
            ARCHIVE_NAME,
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
            170498071,
        ),
    ),
    layouts=(
        _files.Layout(((ARCHIVE_NAME,),), distinctive=True),
        _files.Layout(
            tuple(
                (f"{FOLDER_NAME}/{batch}",) for batch in (*TRAIN_BATCHES, TEST_BATCH)
            ),
            distinctive=True,
        ),
    ),
    aliases=("cifar-10",),
)


def _numpy_reconstruct():
    # NumPy 2 moved `numpy.core` to `numpy._core`; old pickles name the former.
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # NumPy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _BatchUnpickler(pickle.Unpickler):
    """Unpickler for CIFAR batches: allows only what a NumPy array needs."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"A CIFAR-10 batch may only contain plain data and NumPy arrays; "
                f"it refers to {module}.{name}, which is not loaded."
            )
        if name == "_reconstruct":
            return _numpy_reconstruct()
        return getattr(np, name)


#: What else decoding a damaged pickle can raise (besides `DECODE_ERRORS`):
#: garbage opcodes may hand wrong arguments to the allowed NumPy functions.
_PICKLE_ERRORS = (TypeError, AttributeError, IndexError, KeyError, MemoryError)


def unpickle_batch(data, name="CIFAR-10 batch"):
    """Decode one pickled CIFAR-10 batch safely.

    Args:
        data: The pickle's bytes (Python 2 pickles are read with
            `encoding="bytes"`, so their strings come back as `bytes`).
        name: What to call the batch in error messages.

    Returns:
        `(images, labels)`: uint8 `(n, 32, 32, 3)` and uint8 `(n,)`.

    Raises:
        pickle.UnpicklingError: The pickle refers to anything but the NumPy
            array machinery.
        ValueError: The batch lacks `data` or `labels`, they disagree in
            length, the pixels are no integers 0-255 in rows of 3072, or the
            labels no integers 0-9 (nothing is cast silently).
    """
    batch = _BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
    if not isinstance(batch, dict):
        raise ValueError(f"{name} must hold a dict. Received: {type(batch).__name__}")
    # Python 2 wrote the keys as byte strings.
    batch = {
        key.decode("latin1") if isinstance(key, bytes) else key: value
        for key, value in batch.items()
    }
    if "data" not in batch or "labels" not in batch:
        raise ValueError(
            f"{name} must have the keys 'data' and 'labels'. "
            f"Received keys: {sorted(batch, key=str)}"
        )
    pixels = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"])
    if pixels.ndim != 2 or pixels.shape[1] != 3 * 32 * 32:
        raise ValueError(
            f"{name}: 'data' must have shape (n, 3072). Received: {pixels.shape}"
        )
    if labels.shape != (pixels.shape[0],):
        raise ValueError(
            f"{name} has {pixels.shape[0]} images but {labels.size} labels."
        )
    # Range checks before the cast to uint8, which would wrap 300 to 44.
    try:
        pixels = _checks.images(pixels, name, f"{name}: 'data'", (3072,), "")
        labels = _checks.labels(labels, name, f"{name}: 'labels'", 10, "")
    except _files.DamagedFileError as error:
        raise ValueError(error.problem) from None
    # Each row is the red, then green, then blue 32×32 plane, row-major.
    images = pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _read_batches(layout_index, paths):
    names = (*TRAIN_BATCHES, TEST_BATCH)
    if layout_index == 1:
        contents = {}
        for batch, path in zip(names, paths):
            with open(path, "rb") as stream:
                contents[batch] = stream.read()
        return contents
    archive_path = paths[0]
    contents = {}
    try:
        with tarfile.open(archive_path, "r:gz") as archive:
            for batch in names:
                # Read members into memory; nothing is extracted to disk.
                member = archive.extractfile(f"{FOLDER_NAME}/{batch}")
                if member is None:
                    raise KeyError(batch)
                contents[batch] = member.read()
    except KeyError as error:
        raise _files.DamagedFileError(
            archive_path,
            f"{archive_path} lacks {FOLDER_NAME}/{error.args[0]}; it is not the "
            "CIFAR-10 python archive",
            _files.remedy(SPEC),
        ) from None
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise  # not damage: the file cannot be opened
    except (*_files.DECODE_ERRORS, OSError) as error:
        # A damaged gzip stream surfaces as OSError, EOFError or zlib.error.
        raise _files.DamagedFileError(
            archive_path, f"{archive_path} is damaged: {error}", _files.remedy(SPEC)
        ) from error
    return contents


def load_data(data_dir=None, download=True, verbose=True):
    """Load CIFAR-10 as `(x_train, y_train), (x_test, y_test)`.

    Reads `cifar-10-python.tar.gz` (without extracting it) or its extracted
    folder `cifar-10-batches-py/`. Files are looked for in `data_dir`, then
    in the folders of `ANYSMA_DATA_DIR`, then in the cache
    `~/.anysma/datasets` (see `anysma.datasets`). The tarball is checked
    against its published sha256 when it has the published size; the
    extracted batches have no published hash and are checked by content.

    Args:
        data_dir: A folder, or a list of folders, to search first. The files
            may lie in it directly or in its subfolder `cifar10/`.
        download: Download the official tarball into the cache when it is
            not found. With `False`, a missing dataset raises at once.
        verbose: Show download progress.

    Returns:
        Tuple of NumPy arrays `(x_train, y_train), (x_test, y_test)`, as
        `keras.datasets.cifar10` returns them: `x_train` uint8
        `(50000, 32, 32, 3)`, `y_train` uint8 `(50000, 1)` with values 0-9
        (see `CLASS_NAMES`), `x_test` uint8 `(10000, 32, 32, 3)`, `y_test`
        uint8 `(10000, 1)`.

    Raises:
        anysma.datasets.DatasetNotFoundError: The files are not on disk and
            downloading is off or failed; the message says where to put them.
        anysma.datasets.DamagedFileError: The archive or a batch is damaged
            or not CIFAR-10's: truncated, undecodable, a pickle that refers
            to code other than NumPy's array reconstruction, pixels or
            labels out of range (labels must be 0-9), or a tarball of the
            published size with another sha256. A `ValueError` naming the
            file and how to get a good copy.
        ValueError: A downloaded file has the wrong sha256.

    Example (not run by the test suite: it needs the dataset files, or a
    download):

    >>> (x_train, y_train), _ = load_data(data_dir="data")  # doctest: +SKIP
    >>> x_train.shape, y_train.shape  # doctest: +SKIP
    ((50000, 32, 32, 3), (50000, 1))
    """
    layout_index, paths = _files.fetch(SPEC, data_dir, download, verbose=verbose)
    contents = _read_batches(layout_index, paths)
    remedy = _files.remedy(SPEC)
    decoded = {}
    for index, batch in enumerate((*TRAIN_BATCHES, TEST_BATCH)):
        # The archive, or the extracted batch file, is what is damaged.
        path = paths[0] if layout_index == 0 else paths[index]
        name = f"{batch} in {paths[0]}" if layout_index == 0 else path
        errors = (*_files.DECODE_ERRORS, *_PICKLE_ERRORS)
        with _files.damage_guard(path, remedy, errors):
            decoded[batch] = unpickle_batch(contents[batch], name=name)
    train = [decoded[batch] for batch in TRAIN_BATCHES]
    x_test, y_test = decoded[TEST_BATCH]
    x_train = np.concatenate([images for images, _ in train])
    y_train = np.concatenate([labels for _, labels in train])
    return (x_train, y_train.reshape(-1, 1)), (x_test, y_test.reshape(-1, 1))
