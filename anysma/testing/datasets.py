"""Writers of small synthetic datasets in exactly the official file formats.

Each writer puts its files into the dataset's subfolder of `directory`
(`<directory>/mnist/`, `<directory>/cifar10/`, …) and returns `directory`,
so that `load_data(data_dir=directory)` of the matching
`anysma.datasets` module reads them, and one folder can hold all of them
(e.g. as `ANYSMA_DATA_DIR`). The images carry class-dependent patterns plus
noise, so a model can learn them in a few steps of a smoke test.

Example:

>>> import tempfile
>>> from anysma.datasets import mnist
>>> folder = write_mnist_idx(tempfile.mkdtemp(), num_train=64, num_test=32)
>>> (x_train, y_train), (x_test, y_test) = mnist.load_data(data_dir=folder)
>>> x_train.shape, y_test.shape
((64, 28, 28), (32,))
"""

import gzip
import io
import os
import struct
import tarfile
import tempfile
import zipfile

import numpy as np

from anysma.datasets._files import DATA_DIR_ENV
from anysma.utils.validation import check_int

_IDX_TYPE_CODES = {np.dtype("u1"): 0x08, np.dtype("i4"): 0x0C}
_NORB_MAGIC = {np.dtype("u1"): 0x1E3D4C55, np.dtype("i4"): 0x1E3D4C54}
_CIFAR_CLASSES = (
    b"airplane",
    b"automobile",
    b"bird",
    b"cat",
    b"deer",
    b"dog",
    b"frog",
    b"horse",
    b"ship",
    b"truck",
)


def real_data_file(file_name):
    """The path of a real dataset file in the folders of `ANYSMA_DATA_DIR`.

    For tests that need real data (e.g. MNIST's `mnist.npz`): the file is
    looked for in each folder listed in the environment variable
    `ANYSMA_DATA_DIR` (separated by `os.pathsep`), directly or in a
    subfolder, in that order. The variable is read at each call, so call it
    where the environment is the user's (e.g. when a test module is
    imported), not inside a test that isolates the data folders.

    Args:
        file_name: The file's name, e.g. `"mnist.npz"`.

    Returns:
        The absolute path of the first match, or `None` when the variable is
        unset or no listed folder holds the file; tests skip then.

    Example:

    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> os.environ["ANYSMA_DATA_DIR"] = folder
    >>> real_data_file("mnist.npz") is None
    True
    >>> os.makedirs(os.path.join(folder, "mnist"))
    >>> open(os.path.join(folder, "mnist", "mnist.npz"), "wb").close()
    >>> real_data_file("mnist.npz").endswith(os.path.join("mnist", "mnist.npz"))
    True
    >>> del os.environ["ANYSMA_DATA_DIR"]
    """
    for folder in os.environ.get(DATA_DIR_ENV, "").split(os.pathsep):
        if not folder:
            continue
        folder = os.path.abspath(os.path.expanduser(folder))
        candidates = [os.path.join(folder, file_name)]
        if os.path.isdir(folder):
            candidates += [
                os.path.join(folder, entry, file_name)
                for entry in sorted(os.listdir(folder))
            ]
        for candidate in candidates:
            if os.path.isfile(candidate):
                return candidate
    return None


def _write_bytes(path, data):
    """Write `data` to `path` through a temporary file and `os.replace`."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".part", dir=folder
    )
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _check_count(value, argument, minimum=1):
    return check_int(value, argument, minimum=minimum)


def _balanced_labels(rng, count, num_classes):
    labels = np.arange(count) % num_classes
    rng.shuffle(labels)
    return labels


def _class_templates(num_classes, height, width):
    """One bright block per class, at a class-specific place of a grid."""
    columns = int(np.ceil(np.sqrt(num_classes)))
    rows = int(np.ceil(num_classes / columns))
    cell_height, cell_width = height // rows, width // columns
    templates = np.zeros((num_classes, height, width), dtype="float32")
    for index in range(num_classes):
        top = (index // columns) * cell_height + cell_height // 5
        left = (index % columns) * cell_width + cell_width // 5
        block_height = max(1, (3 * cell_height) // 5)
        block_width = max(1, (3 * cell_width) // 5)
        templates[index, top : top + block_height, left : left + block_width] = 1.0
    return templates


def _pattern_images(rng, labels, templates, max_shift=1, noise=30.0):
    """Class templates, randomly shifted by up to `max_shift`, plus noise."""
    images = np.empty((len(labels),) + templates.shape[1:], dtype="float32")
    for index, label in enumerate(labels):
        shift = rng.integers(-max_shift, max_shift + 1, size=2)
        images[index] = np.roll(templates[label], tuple(shift), axis=(0, 1))
    images = 200.0 * images + rng.uniform(0.0, noise, size=images.shape)
    return np.clip(images, 0, 255).astype("uint8")


def _idx_bytes(array):
    array = np.asarray(array)
    header = bytes([0, 0, _IDX_TYPE_CODES[array.dtype], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_mnist_idx(directory, num_train=64, num_test=32, seed=0, fashion=False):
    """Write a small MNIST (or Fashion-MNIST) in the official gzipped IDX files.

    Args:
        directory: Folder to write into; the files go to its subfolder
            `mnist/` (or `fashion_mnist/`), which is created.
        num_train: Number of training images.
        num_test: Number of test images.
        seed: Seed of the random patterns and labels.
        fashion: Write Fashion-MNIST's folder instead of MNIST's (the file
            format is the same).

    Returns:
        `directory`, for `load_data(data_dir=directory)`.
    """
    num_train = _check_count(num_train, "num_train")
    num_test = _check_count(num_test, "num_test")
    rng = np.random.default_rng(seed)
    templates = _class_templates(10, 28, 28)
    folder = os.path.join(directory, "fashion_mnist" if fashion else "mnist")
    for prefix, count in (("train", num_train), ("t10k", num_test)):
        labels = _balanced_labels(rng, count, 10).astype("uint8")
        images = _pattern_images(rng, labels, templates)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            data = gzip.compress(_idx_bytes(array), mtime=0)
            _write_bytes(os.path.join(folder, f"{prefix}-{kind}-ubyte.gz"), data)
    return directory


def _py2_pickle(value):
    """Pickle `value` as Python 2's cPickle (protocol 2) wrote CIFAR-10.

    Byte strings become `SHORT_BINSTRING`/`BINSTRING` (Python 2 `str`) and
    uint8 arrays the `numpy.core.multiarray._reconstruct` calls NumPy 1.x
    wrote, so readers meet the same opcodes as in the real batches.
    """
    output = bytearray(b"\x80\x02")
    _py2_dump(value, output)
    output += b"."
    return bytes(output)


def _py2_dump(value, output):
    if value is None:
        output += b"N"
    elif isinstance(value, bool):
        output += b"\x88" if value else b"\x89"
    elif isinstance(value, (int, np.integer)):
        value = int(value)
        if 0 <= value < 256:
            output += b"K" + bytes([value])
        elif 0 <= value < 65536:
            output += b"M" + struct.pack("<H", value)
        else:
            output += b"J" + struct.pack("<i", value)
    elif isinstance(value, bytes):
        if len(value) < 256:
            output += b"U" + bytes([len(value)]) + value
        else:
            output += b"T" + struct.pack("<I", len(value)) + value
    elif isinstance(value, tuple):
        output += b"("
        for item in value:
            _py2_dump(item, output)
        output += b"t"
    elif isinstance(value, list):
        output += b"]"
        if value:
            output += b"("
            for item in value:
                _py2_dump(item, output)
            output += b"e"
    elif isinstance(value, dict):
        output += b"}"
        if value:
            output += b"("
            for key, item in value.items():
                _py2_dump(key, output)
                _py2_dump(item, output)
            output += b"u"
    elif isinstance(value, np.ndarray) and value.dtype == np.uint8:
        output += b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
        _py2_dump((0,), output)
        _py2_dump(b"b", output)
        output += b"\x87R"  # TUPLE3, REDUCE: _reconstruct(ndarray, (0,), "b")
        output += b"("
        _py2_dump(1, output)
        _py2_dump(tuple(value.shape), output)
        output += b"cnumpy\ndtype\n"
        _py2_dump((b"u1", 0, 1), output)
        output += b"R"
        _py2_dump((3, b"|", None, None, None, -1, -1, 0), output)
        output += b"b"  # BUILD: dtype.__setstate__
        _py2_dump(False, output)
        _py2_dump(np.ascontiguousarray(value).tobytes(), output)
        output += b"tb"  # the array's state tuple, BUILD
    else:
        raise TypeError(f"Cannot write {type(value).__name__} into a CIFAR batch.")


def _cifar_batch(label, images, labels, start):
    # Rows hold the red, green and blue 32×32 planes one after the other.
    pixels = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return {
        b"batch_label": label,
        b"labels": [int(value) for value in labels],
        b"data": np.ascontiguousarray(pixels, dtype="uint8"),
        b"filenames": [
            f"synthetic_{start + index}.png".encode() for index in range(len(labels))
        ],
    }


def write_cifar10(directory, num_train=64, num_test=32, seed=0):
    """Write a small CIFAR-10 as the official `cifar-10-python.tar.gz`.

    The tarball holds `cifar-10-batches-py/` with five training batches
    (the images split evenly), `test_batch` and `batches.meta`, each a
    protocol-2 pickle as Python 2 wrote them.

    Args:
        directory: Folder to write into; the tarball goes to its subfolder
            `cifar10/`, which is created.
        num_train: Number of training images (spread over five batches).
        num_test: Number of test images.
        seed: Seed of the random patterns and labels.

    Returns:
        `directory`, for `load_data(data_dir=directory)`.
    """
    num_train = _check_count(num_train, "num_train")
    num_test = _check_count(num_test, "num_test")
    rng = np.random.default_rng(seed)
    templates = _class_templates(10, 32, 32)
    colours = rng.uniform(0.3, 1.0, size=(10, 3)).astype("float32")

    def images_for(labels):
        grey = _pattern_images(rng, labels, templates).astype("float32")
        return (grey[..., None] * colours[labels][:, None, None, :]).astype("uint8")

    members = {}
    train_labels = _balanced_labels(rng, num_train, 10)
    train_images = images_for(train_labels)
    batches = np.array_split(np.arange(num_train), 5)
    for number, indices in enumerate(batches, start=1):
        label = f"training batch {number} of 5".encode()
        start = int(indices[0]) if len(indices) else 0
        members[f"data_batch_{number}"] = _cifar_batch(
            label, train_images[indices], train_labels[indices], start
        )
    test_labels = _balanced_labels(rng, num_test, 10)
    members["test_batch"] = _cifar_batch(
        b"testing batch 1 of 1", images_for(test_labels), test_labels, 0
    )
    members["batches.meta"] = {
        b"num_cases_per_batch": 10000,
        b"label_names": list(_CIFAR_CLASSES),
        b"num_vis": 3072,
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members.items():
            data = _py2_pickle(content)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    _write_bytes(
        os.path.join(directory, "cifar10", "cifar-10-python.tar.gz"),
        buffer.getvalue(),
    )
    return directory


def write_affnist(directory, num_test=32, seed=0):
    """Write a small affNIST test set as the official `test.mat.zip`.

    The zip holds `test.mat`, a MATLAB v5 file (written by
    `scipy.io.savemat`) with the struct `affNISTdata` whose fields `image`
    `(1600, n)` (one image per column, pixels row by row), `label_int`
    `(1, n)` and `label_one_of_n` `(10, n)` follow the official file. The
    digits-like patterns sit at random places of the 40×40 canvas.

    Args:
        directory: Folder to write into; the zip goes to its subfolder
            `affnist/`, which is created.
        num_test: Number of images.
        seed: Seed of the random patterns, places and labels.

    Returns:
        `directory`, for `load_data(data_dir=directory)`.
    """
    from scipy.io import savemat

    num_test = _check_count(num_test, "num_test")
    rng = np.random.default_rng(seed)
    labels = _balanced_labels(rng, num_test, 10).astype("uint8")
    digits = _pattern_images(rng, labels, _class_templates(10, 28, 28), noise=0.0)
    images = np.zeros((num_test, 40, 40), dtype="uint8")
    for index, digit in enumerate(digits):
        top, left = rng.integers(0, 13, size=2)
        images[index, top : top + 28, left : left + 28] = digit
    one_hot = np.zeros((10, num_test), dtype="uint8")
    one_hot[labels, np.arange(num_test)] = 1
    record = {
        "image": images.reshape(num_test, 1600).T.copy(),
        "label_int": labels.reshape(1, -1),
        "label_one_of_n": one_hot,
    }
    mat_buffer = io.BytesIO()
    savemat(mat_buffer, {"affNISTdata": record}, format="5")
    zip_buffer = io.BytesIO()
    with zipfile.ZipFile(zip_buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("test.mat", mat_buffer.getvalue())
    _write_bytes(
        os.path.join(directory, "affnist", "test.mat.zip"), zip_buffer.getvalue()
    )
    return directory


def _norb_bytes(array):
    array = np.asarray(array)
    sizes = list(array.shape) + [1] * max(0, 3 - array.ndim)
    header = struct.pack("<Ii", _NORB_MAGIC[array.dtype], array.ndim)
    header += struct.pack(f"<{len(sizes)}i", *sizes)
    return header + array.astype(array.dtype.newbyteorder("<")).tobytes()


def write_smallnorb(directory, num_train=64, num_test=32, seed=0):
    """Write a small smallNORB as the six official gzipped NORB files.

    Images are `(n, 2, 96, 96)` uint8 (a stereo pair with a small
    disparity), categories `(n,)` int32 in 0-4, and info `(n, 4)` int32 with
    values in the real ranges: instance from 4, 6, 7, 8, 9 (training) or
    0, 1, 2, 3, 5 (test), elevation 0-8, azimuth 0, 2, …, 34, lighting 0-5.

    Args:
        directory: Folder to write into; the files go to its subfolder
            `smallnorb/`, which is created.
        num_train: Number of training pairs.
        num_test: Number of test pairs.
        seed: Seed of the random patterns, labels and info.

    Returns:
        `directory`, for `load_data(data_dir=directory)`.
    """
    from anysma.datasets import smallnorb

    num_train = _check_count(num_train, "num_train")
    num_test = _check_count(num_test, "num_test")
    rng = np.random.default_rng(seed)
    templates = _class_templates(5, 96, 96)
    instances = {"train": (4, 6, 7, 8, 9), "test": (0, 1, 2, 3, 5)}
    folder = os.path.join(directory, "smallnorb")
    names = iter(smallnorb.FILE_NAMES)
    for split, count in (("train", num_train), ("test", num_test)):
        labels = _balanced_labels(rng, count, 5).astype("int32")
        left = _pattern_images(rng, labels, templates, max_shift=3)
        right = np.roll(left, 2, axis=2)  # the second camera sees a shifted view
        info = np.stack(
            [
                rng.choice(instances[split], size=count),
                rng.integers(0, 9, size=count),
                2 * rng.integers(0, 18, size=count),
                rng.integers(0, 6, size=count),
            ],
            axis=1,
        ).astype("int32")
        for array in (np.stack([left, right], axis=1), labels, info):
            data = gzip.compress(_norb_bytes(array), mtime=0)
            _write_bytes(os.path.join(folder, next(names)), data)
    return directory
