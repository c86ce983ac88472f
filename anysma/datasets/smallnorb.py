"""smallNORB: stereo images of 50 toys in 5 categories (LeCun, Huang and Bottou, 2004).

24,300 training and 24,300 test pairs of 96×96 grey-scale stereo images of
toy animals, human figures, airplanes, trucks and cars, taken under 6
lightings from 9 elevations and 18 azimuths. Of the 10 toys per category,
instances 4, 6, 7, 8 and 9 are in the training set and 0, 1, 2, 3 and 5 in
the test set. The six official files come from
`https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/`; their sha256 values are
those published with TensorFlow Datasets' URL checksums.

The files use NORB's "binary matrix" format (all numbers little-endian): a
4-byte magic number naming the element type (`0x1E3D4C55` uint8,
`0x1E3D4C54` int32, …), a 4-byte number of dimensions `ndim`, then
`max(ndim, 3)` 4-byte sizes (unused ones are 1), then the elements in
row-major order.

Category indices: 0 animal, 1 human, 2 airplane, 3 truck, 4 car. The `info`
columns are `INFO_COLUMNS`: instance (0-9), elevation (0-8, i.e. 30° to 70°
in steps of 5°), azimuth (0, 2, …, 34; times 10 gives degrees) and lighting
(0-5).
"""

import gzip
import zlib

import numpy as np

from anysma.datasets import _checks
from anysma.datasets import _files

CLASS_NAMES = ("animal", "human", "airplane", "truck", "car")
INFO_COLUMNS = ("instance", "elevation", "azimuth", "lighting")
SETTINGS = ("normal", "elevation", "azimuth")
#: Elevation indices (30°-40°) seen in training in the `elevation` setting.
FAMILIAR_ELEVATIONS = (0, 1, 2)
#: Elevation indices (45°-70°) of its novel-viewpoint test set.
NOVEL_ELEVATIONS = (3, 4, 5, 6, 7, 8)
#: Azimuths (0°, 20°, 40°, 300°, 320°, 340°) seen in the `azimuth` setting.
FAMILIAR_AZIMUTHS = (0, 2, 4, 30, 32, 34)
#: Azimuths (60°-280°) of its novel-viewpoint test set.
NOVEL_AZIMUTHS = tuple(range(6, 30, 2))

#: NORB magic number -> little-endian NumPy dtype.
NORB_DTYPES = {
    0x1E3D4C51: np.dtype("<f4"),
    0x1E3D4C53: np.dtype("<f8"),
    0x1E3D4C54: np.dtype("<i4"),
    0x1E3D4C55: np.dtype("u1"),
    0x1E3D4C56: np.dtype("<i2"),
}

_PREFIXES = {
    "train": "smallnorb-5x46789x9x18x6x2x96x96-training",
    "test": "smallnorb-5x01235x9x18x6x2x96x96-testing",
}
_SHA256 = {
    "train-dat": "5ffd6272a07d32695ee1082a26a41a93a37aab8c28da047f8c34ed348d214873",
    "train-cat": "2784e542c1922060691090952b6cd6278879a216c90f81476f0f00256d42cdaa",
    "train-info": "de7eb932ebe7a4ee16217fead60660d0eb3d23632c2f4d1c51f88c501c17bf32",
    "test-dat": "cf7104eed3e51174d2f65b66d1e5878b9da233b886f161b0d88f4510ba2c7474",
    "test-cat": "ecaf6d5bb8c3bc5eab9cf0258f6d2198dd474e016e374836fc097f2e5ff509ff",
    "test-info": "16adf314226327ee006d1a44db8cfef52773c06c829951d5653a9f6f310248a2",
}
_SIZES = {
    "train-dat": 131896188,
    "train-cat": 348,
    "train-info": 71052,
    "test-dat": 130799817,
    "test-cat": 347,
    "test-info": 10428,
}
_BASE_URL = "https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/"
_PARTS = [
    (split, kind) for split in ("train", "test") for kind in ("dat", "cat", "info")
]
#: The six official file names (gzipped), training files first.
FILE_NAMES = tuple(f"{_PREFIXES[split]}-{kind}.mat.gz" for split, kind in _PARTS)
_NPZ_KEYS = ("x_train", "y_train", "info_train", "x_test", "y_test", "info_test")

SPEC = _files.DatasetSpec(
    name="smallnorb",
    title="smallNORB",
    source="https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/",
    remote_files=tuple(
        _files.RemoteFile(
            name,
            _BASE_URL + name,
            _SHA256[f"{split}-{kind}"],
            _SIZES[f"{split}-{kind}"],
        )
        for name, (split, kind) in zip(FILE_NAMES, _PARTS)
    ),
    layouts=(
        _files.Layout(
            tuple((name, name[: -len(".gz")]) for name in FILE_NAMES),
            distinctive=True,
        ),
        _files.Layout((("smallnorb.npz",),), distinctive=True),
    ),
)


def parse_norb(data, name="NORB data"):
    """Decode the bytes of an (uncompressed) NORB binary matrix file.

    Args:
        data: The file's bytes.
        name: What to call the data in error messages (e.g. its path).

    Returns:
        A NumPy array of the stored shape (`ndim` dimensions), native order.

    Raises:
        ValueError: Unknown magic number, bad dimension count, or a length
            that does not match the header (truncated or trailing data).
    """
    data = memoryview(data).cast("B")
    if len(data) < 8:
        raise ValueError(
            f"{name} is truncated: a NORB header needs at least 20 bytes, "
            f"the data has {len(data)}."
        )
    magic, num_dims = (int(value) for value in np.frombuffer(data[:8], "<i4"))
    magic &= 0xFFFFFFFF
    if magic not in NORB_DTYPES:
        known = ", ".join(f"0x{code:08X}" for code in NORB_DTYPES)
        raise ValueError(
            f"{name} is not a NORB matrix of a supported type: its magic number "
            f"is 0x{magic:08X}; expected one of {known}."
        )
    if not 0 <= num_dims <= 64:
        raise ValueError(f"{name} has an invalid number of dimensions: {num_dims}.")
    header_size = 8 + 4 * max(num_dims, 3)
    if len(data) < header_size:
        raise ValueError(
            f"{name} is truncated: its header needs {header_size} bytes, "
            f"the data has {len(data)}."
        )
    sizes = np.frombuffer(data[8:header_size], "<i4")
    if np.any(sizes < 0):
        raise ValueError(f"{name} has negative sizes in its header: {sizes}.")
    shape = tuple(int(size) for size in sizes[:num_dims])
    dtype = NORB_DTYPES[magic]
    expected = header_size + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "longer than its header says"
        raise ValueError(
            f"{name} is {problem}: shape {shape} of {dtype.name} needs "
            f"{expected} bytes, the data has {len(data)}."
        )
    values = np.frombuffer(data[header_size:], dtype=dtype).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def read_norb(path):
    """Read a NORB binary matrix file, gzipped (detected by content) or not.

    Raises:
        ValueError: The file is a damaged gzip file or no valid NORB matrix;
            the message names `path`.
    """
    with open(path, "rb") as stream:
        data = stream.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise ValueError(f"{path} is a damaged gzip file: {error}") from error
    return parse_norb(data, name=path)


def _check_split(images, labels, info, name, paths, remedy):
    images_path, labels_path, info_path = paths
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[1:] == (2, 96, 96):
        # The files store (n, camera, height, width); Keras wants channels last.
        images = images.transpose(0, 2, 3, 1)
    if images.ndim != 4 or images.shape[1:] != (96, 96, 2):
        raise _files.DamagedFileError(
            images_path,
            f"{name} images must have shape (n, 2, 96, 96) in the NORB files or "
            f"(n, 96, 96, 2). Received: {images.shape}",
            remedy,
        )
    num_images = images.shape[0]
    labels, info = np.asarray(labels).reshape(-1), np.asarray(info)
    if labels.shape != (num_images,) or info.shape != (num_images, 4):
        path = labels_path if labels.shape != (num_images,) else info_path
        raise _files.DamagedFileError(
            path,
            f"{name} has {num_images} images, {labels.size} labels and info of "
            f"shape {info.shape}; expected ({num_images},) labels and info of "
            f"shape ({num_images}, 4)",
            remedy,
        )
    # Range checks before any narrowing cast, which would wrap silently.
    images = _checks.images(images, images_path, f"{name} images", (96, 96, 2), remedy)
    labels = _checks.labels(
        labels, labels_path, f"{name} labels", len(CLASS_NAMES), remedy
    )
    info = _checks.integers(info, info_path, f"{name} info", (4,), remedy)
    return images, labels, info


def load_data(data_dir=None, download=True, verbose=True):
    """Load smallNORB as `(x_train, y_train, info_train), (x_test, y_test, info_test)`.

    Reads the six official files (gzipped or not) or a `smallnorb.npz` with
    the keys `x_train, y_train, info_train, x_test, y_test, info_test`.
    Files are looked for in `data_dir`, then in the folders of
    `ANYSMA_DATA_DIR`, then in the cache `~/.anysma/datasets` (see
    `anysma.datasets`); the files may lie directly in a folder or in its
    subfolder `smallnorb/`. The gzipped official files are checked against
    their published sha256 when they have the published size; uncompressed
    files and a `smallnorb.npz` have no published hash and are checked by
    content: images integers 0-255, labels integers 0-4, info non-negative
    integers, equally many of each.

    Args:
        data_dir: A folder, or a list of folders, to search first.
        download: Download the official files (about 250 MB) into the cache
            when they are not found. With `False`, a missing dataset raises
            at once.
        verbose: Show download progress.

    Returns:
        Two tuples of NumPy arrays, training set then test set, each
        `(x, y, info)`: `x` uint8 `(24300, 96, 96, 2)` (the two cameras of
        the stereo pair as channels), `y` uint8 `(24300,)` with the
        categories 0-4 (see `CLASS_NAMES`), `info` int32 `(24300, 4)` with
        the columns `INFO_COLUMNS`.

    Raises:
        anysma.datasets.DatasetNotFoundError: The files are not on disk and
            downloading is off or failed; the message says where to put them.
        anysma.datasets.DamagedFileError: A file is damaged or not
            smallNORB's (bad magic number, truncated, undecodable, wrong
            sha256, shapes or value ranges); a `ValueError` naming the file.
        ValueError: A downloaded file has the wrong sha256.

    Example (not run by the test suite: it needs the dataset files, or a
    download):

    >>> train, test = load_data(data_dir="data")  # doctest: +SKIP
    >>> train, validation, test = split("elevation", train, test)  # doctest: +SKIP
    """
    layout_index, paths = _files.fetch(SPEC, data_dir, download, verbose=verbose)
    remedy = _files.remedy(SPEC)
    if layout_index == 0:
        arrays = []
        for path in paths:
            with _files.damage_guard(path, remedy):
                arrays.append(read_norb(path))
        sources = paths
    else:
        arrays = _files.read_npz(paths[0], _NPZ_KEYS, remedy)
        sources = [paths[0]] * 6
    train = _check_split(
        *arrays[:3], name="smallNORB training set", paths=sources[:3], remedy=remedy
    )
    test = _check_split(
        *arrays[3:], name="smallNORB test set", paths=sources[3:], remedy=remedy
    )
    return train, test


def _check_triple(data, argument):
    if not isinstance(data, (tuple, list)) or len(data) != 3:
        raise ValueError(
            f"`{argument}` must be a tuple (x, y, info) as `load_data` returns it. "
            f"Received: {type(data).__name__}"
            + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else "")
        )
    arrays = tuple(np.asarray(array) for array in data)
    info = arrays[2]
    if info.ndim != 2 or info.shape[1] != len(INFO_COLUMNS):
        raise ValueError(
            f"`{argument}` info must have shape (n, 4). Received: {info.shape}"
        )
    if any(array.shape[0] != info.shape[0] for array in arrays):
        raise ValueError(
            f"`{argument}` arrays must have the same length. "
            f"Received lengths: {[array.shape[0] for array in arrays]}"
        )
    return arrays


def split(setting, train, test):
    """Split smallNORB as in the LVQ-capsule paper's three settings.

    - `"normal"`: the official sets; the test set serves as validation set
      and there is no separate test set.
    - `"elevation"` (novel viewpoints): train on training images with
      elevation index 0-2 (30°-40°), validate on test images of those
      elevations, test on test images with elevation index 3-8 (45°-70°).
    - `"azimuth"` (novel viewpoints): train on training images with azimuth
      0, 2, 4, 30, 32 or 34 (0°, 20°, 40°, 300°, 320°, 340°), validate on
      test images of those azimuths, test on test images with azimuth 6-28
      (60°-280°).

    The viewpoint settings follow the protocol of Hinton, Sabour and Frosst
    (2018).

    Args:
        setting: One of `SETTINGS`: `"normal"`, `"elevation"`, `"azimuth"`.
        train: The training tuple `(x, y, info)` from `load_data`.
        test: The test tuple `(x, y, info)` from `load_data`.

    Returns:
        `(train, validation, test)`, each a tuple `(x, y, info)`; `test` is
        `None` for `"normal"`.

    Example (not run by the test suite: it needs the dataset files, or a
    download):

    >>> train, test = load_data(data_dir="data")  # doctest: +SKIP
    >>> train, validation, novel = split("azimuth", train, test)  # doctest: +SKIP
    """
    if setting not in SETTINGS:
        raise ValueError(
            f"`setting` must be one of {SETTINGS}. Received: setting={setting!r}"
        )
    train = _check_triple(train, "train")
    test = _check_triple(test, "test")
    if setting == "normal":
        return train, test, None
    if setting == "elevation":
        column = INFO_COLUMNS.index("elevation")
        familiar, novel = FAMILIAR_ELEVATIONS, NOVEL_ELEVATIONS
    else:
        column = INFO_COLUMNS.index("azimuth")
        familiar, novel = FAMILIAR_AZIMUTHS, NOVEL_AZIMUTHS

    def select(data, values):
        mask = np.isin(data[2][:, column], values)
        return tuple(array[mask] for array in data)

    return select(train, familiar), select(test, familiar), select(test, novel)
