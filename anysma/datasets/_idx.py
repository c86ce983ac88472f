"""Reader for the IDX format of MNIST and Fashion-MNIST.

An IDX file starts with the magic number `00 00 TT DD`: two zero bytes, a
type code `TT` and the number of dimensions `DD`. Then come `DD` big-endian
uint32 sizes and the values in row-major order, big-endian.
"""

import gzip

import numpy as np

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
    """Read an IDX file, gzipped (`.gz`, detected by content) or not."""
    with open(path, "rb") as stream:
        data = stream.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise ValueError(f"{path} is a damaged gzip file: {error}") from error
    return parse_idx(data, name=path)


def _check_pair(images, labels, name, image_shape):
    if images.ndim != 3 or images.shape[1:] != image_shape:
        raise ValueError(
            f"{name} images must have shape (n, {image_shape[0]}, {image_shape[1]}). "
            f"Received shape: {images.shape}"
        )
    if labels.shape != images.shape[:1]:
        raise ValueError(
            f"{name} has {images.shape[0]} images but labels of shape {labels.shape}."
        )
    return images.astype("uint8", copy=False), labels.astype("uint8", copy=False)


def load_idx_dataset(spec, data_dir, download, verbose=True, image_shape=(28, 28)):
    """Load an MNIST-style dataset: four IDX files or a Keras-layout `.npz`.

    Shared by MNIST and Fashion-MNIST. See `load_data` for the arguments.
    """
    layout_index, paths = _files.fetch(spec, data_dir, download, verbose=verbose)
    if layout_index == 0:
        arrays = [read_idx(path) for path in paths]
    else:
        arrays = _files.read_npz(paths[0], NPZ_KEYS)
    x_train, y_train = _check_pair(
        arrays[0], arrays[1], f"{spec.title} training set", image_shape
    )
    x_test, y_test = _check_pair(
        arrays[2], arrays[3], f"{spec.title} test set", image_shape
    )
    return (x_train, y_train), (x_test, y_test)
