"""Reader for the IDX format of MNIST and Fashion-MNIST.

An IDX file starts with the magic number `00 00 TT DD`: two zero bytes, a
type code `TT` and the number of dimensions `DD`. Then come `DD` big-endian
uint32 sizes and the values in row-major order, big-endian.
"""

import gzip
import zlib

import numpy as np

from anysma.datasets import _checks
from anysma.datasets import _files

#: The four IDX files of MNIST and Fashion-MNIST, without `.gz`.
IDX_FILE_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
#: Keys of the Keras-layout `.npz` alternative to the IDX files.
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")

#: The official sizes of the training and test sets of both datasets.
OFFICIAL_SIZES = (60000, 10000)
#: Per-class counts `(training, test)` of the official files, published with
#: the datasets; they tell MNIST and Fashion-MNIST apart whatever the file
#: format, and reveal damaged or altered labels.
OFFICIAL_CLASS_COUNTS = {
    "MNIST": (
        (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
        (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
    ),
    "Fashion-MNIST": ((6000,) * 10, (1000,) * 10),
}

#: IDX type code -> big-endian NumPy dtype.
IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(data, name="IDX data"):
    """Decode the bytes of an (uncompressed) IDX file.

    Args:
        data: The file's bytes.
        name: What to call the data in error messages (e.g. its path).

    Returns:
        A NumPy array of the stored shape, in native byte order.

    Raises:
        ValueError: Bad magic number, unknown type code, or a length that
            does not match the header (truncated or trailing data).
    """
    data = memoryview(data).cast("B")
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{name} is not an IDX file: it must start with two zero bytes. "
            f"Received first bytes: {bytes(data[:4]).hex(' ')}"
        )
    type_code, num_dims = data[2], data[3]
    if type_code not in IDX_DTYPES:
        raise ValueError(
            f"{name} has the unknown IDX type code 0x{type_code:02X}; expected "
            f"one of {', '.join(f'0x{code:02X}' for code in IDX_DTYPES)}."
        )
    header_size = 4 + 4 * num_dims
    if len(data) < header_size:
        raise ValueError(
            f"{name} is truncated: its header needs {header_size} bytes, "
            f"the data has {len(data)}."
        )
    shape = tuple(int(size) for size in np.frombuffer(data[4:header_size], ">u4"))
    dtype = IDX_DTYPES[type_code]
    expected = header_size + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "longer than its header says"
        raise ValueError(
            f"{name} is {problem}: shape {shape} of {dtype.name} needs "
            f"{expected} bytes, the data has {len(data)}."
        )
    values = np.frombuffer(data[header_size:], dtype=dtype).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def read_idx(path):
    """Read an IDX file, gzipped (`.gz`, detected by content) or not.

    Raises:
        ValueError: The file is a damaged gzip file or no valid IDX file;
            the message names `path`.
    """
    with open(path, "rb") as stream:
        data = stream.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise ValueError(f"{path} is a damaged gzip file: {error}") from error
    return parse_idx(data, name=path)


def _check_pair(images, labels, name, image_shape, paths, remedy):
    images_path, labels_path = paths
    images = _checks.images(images, images_path, f"{name} images", image_shape, remedy)
    labels = np.asarray(labels)
    if labels.shape != images.shape[:1]:
        raise _files.DamagedFileError(
            labels_path,
            f"{name} has {images.shape[0]} images but labels of shape {labels.shape}",
            remedy,
        )
    labels = _checks.labels(labels, labels_path, f"{name} labels", 10, remedy)
    return images, labels


def _check_identity(spec, y_train, y_test, path, remedy):
    """For the full dataset, compare the class counts with the official ones.

    MNIST and Fashion-MNIST share format, shapes and label range; only the
    content tells them apart. Subsets and synthetic files are left alone.
    """
    own = OFFICIAL_CLASS_COUNTS.get(spec.title)
    if own is None or (len(y_train), len(y_test)) != OFFICIAL_SIZES:
        return
    counts = (
        tuple(np.bincount(y_train, minlength=10).tolist()),
        tuple(np.bincount(y_test, minlength=10).tolist()),
    )
    if counts == own:
        return
    for title, official in OFFICIAL_CLASS_COUNTS.items():
        if counts == official:
            raise _files.DamagedFileError(
                path,
                f"its labels have {title}'s official class counts, not "
                f"{spec.title}'s: it holds {title}, not {spec.title}",
                remedy,
            )
    raise _files.DamagedFileError(
        path,
        f"its {OFFICIAL_SIZES[0]} training labels have the class counts "
        f"{list(counts[0])} and its test labels {list(counts[1])}; {spec.title}'s "
        f"official counts are {list(own[0])} and {list(own[1])}",
        remedy,
    )


def load_idx_dataset(spec, data_dir, download, verbose=True, image_shape=(28, 28)):
    """Load an MNIST-style dataset: four IDX files or a Keras-layout `.npz`.

    Shared by MNIST and Fashion-MNIST. See `load_data` for the arguments.
    Found files are checked against the published sha256 values where one
    exists for them (`_files.verify_published`), every file is decoded
    under `_files.damage_guard`, and the arrays are checked: images
    integers 0-255 of shape `(n, 28, 28)`, labels integers 0-9, as many
    labels as images and, for the full 60,000 / 10,000 dataset, the
    official class counts of `spec`'s dataset.

    Raises:
        DamagedFileError: A file is damaged or is not `spec`'s file.
    """
    layout_index, paths = _files.fetch(spec, data_dir, download, verbose=verbose)
    remedy = _files.remedy(spec)
    if layout_index == 0:
        arrays = []
        for path in paths:
            with _files.damage_guard(path, remedy):
                arrays.append(read_idx(path))
        sources = paths
    else:
        arrays = _files.read_npz(paths[0], NPZ_KEYS, remedy)
        sources = [paths[0]] * 4
    x_train, y_train = _check_pair(
        arrays[0],
        arrays[1],
        f"{spec.title} training set",
        image_shape,
        sources[0:2],
        remedy,
    )
    x_test, y_test = _check_pair(
        arrays[2],
        arrays[3],
        f"{spec.title} test set",
        image_shape,
        sources[2:4],
        remedy,
    )
    _check_identity(spec, y_train, y_test, sources[1], remedy)
    return (x_train, y_train), (x_test, y_test)
