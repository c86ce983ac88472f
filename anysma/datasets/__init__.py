"""Datasets, loaded as NumPy arrays like `keras.datasets`.

Tecator ships with anysma. The other loaders read the official files of
each dataset and look for them, in this order, in

1. the folder(s) passed as `data_dir=` to `load_data`;
2. the folders listed in the environment variable `ANYSMA_DATA_DIR`
   (separated by `os.pathsep`, i.e. `:` on Linux and macOS);
3. the download cache `<ANYSMA_CACHE_DIR>/datasets` (default
   `~/.anysma/datasets`).

Each folder may hold a dataset's files directly or in a subfolder named
after it (`mnist/`, `fashion_mnist/`, `cifar10/`, `affnist/`,
`smallnorb/`). MNIST and Fashion-MNIST share their IDX file names, and
affNIST's `test.mat.zip` is generic too, so in the folders of
`ANYSMA_DATA_DIR` and in the cache these must lie in the dataset's
subfolder. When nothing is found, `load_data(download=True)` (the default)
downloads the official files into the cache and checks their sha256;
offline, a `DatasetNotFoundError` says which files to get and where to put
them. `status()` reports what is present.

MNIST and Fashion-MNIST also accept a `mnist.npz` / `fashion_mnist.npz` in
the layout of `keras.datasets` (keys `x_train, y_train, x_test, y_test`).

Everything loaded is checked. A found file is compared with the published
sha256 where one exists for it (the official files, Keras' `mnist.npz`, the
shipped Tecator file): a file with another published file's digest (e.g.
Fashion-MNIST's file named as MNIST's) or with the published size but
another digest is refused. Files without a published hash (your own
conversions, subsets, uncompressed files) are checked by content: image
shapes and pixel range, label dtype and range (never cast with
wrap-around), equal lengths, and for the full MNIST / Fashion-MNIST the
official class counts. Every decoding error, and every failed check, raises
`DamagedFileError` (a `ValueError`) naming the file, saying it is damaged
and how to get a good copy.
"""

import os

from anysma.datasets import affnist
from anysma.datasets import cifar10
from anysma.datasets import fashion_mnist
from anysma.datasets import mnist
from anysma.datasets import smallnorb
from anysma.datasets import tecator
from anysma.datasets._files import DamagedFileError
from anysma.datasets._files import DatasetNotFoundError

_DOWNLOADABLE = (mnist, fashion_mnist, cifar10, affnist, smallnorb)
TECATOR_SOURCE = "http://lib.stat.cmu.edu/datasets/tecator"


def status(data_dir=None):
    """Report, for every dataset, whether and where its files are on disk.

    Nothing is downloaded and nothing is decoded. Found files are checked
    cheaply: against the published sha256 where one exists (only files of
    a published size are hashed; digests are cached in the process), and
    `.npz` / `.zip` files for a readable zip directory, which truncated
    files lack. A file that passes may still fail the loader's content
    checks.

    Args:
        data_dir: Folder(s) to search first, as for the loaders.

    Returns:
        A list of dicts, one per dataset (`mnist`, `fashion_mnist`,
        `cifar10`, `affnist`, `smallnorb`, `tecator`), with the keys
        `"name"`; `"state"`: `"present"`, `"damaged"` or `"missing"`;
        `"present"` (bool, whether its files are on disk, damaged or not);
        `"location"` (the folder holding the files, or `None`); `"files"`
        (the files found, or the official file names when absent);
        `"problem"` (for a damaged dataset the message of its
        `DamagedFileError`, else `None`); and `"source"` (where the data
        comes from).

    Example (not run by the test suite: its output depends on the files
    of the machine):

    >>> for entry in status():  # doctest: +SKIP
    ...     print(entry["name"], entry["state"], entry["location"])
    """
    from anysma.datasets import _files

    entries = []
    for module in _DOWNLOADABLE:
        spec = module.SPEC
        found = _files.find(spec, data_dir)
        problem = None
        if found is None:
            location = None
            files = [remote.name for remote in spec.remote_files]
        else:
            _, location, paths = found
            files = [os.path.relpath(path, location) for path in paths]
            try:
                for path in paths:
                    _files.quick_check(spec, path)
            except DamagedFileError as error:
                problem = str(error)
        entries.append(
            _entry(spec.name, found is not None, problem, location, files, spec.source)
        )
    tecator_path = tecator._path()
    tecator_present = os.path.isfile(tecator_path)
    problem = None
    if tecator_present:
        try:
            tecator.verify_file()
        except DamagedFileError as error:
            problem = str(error)
    entries.append(
        _entry(
            "tecator",
            tecator_present,
            problem,
            os.path.dirname(tecator_path) if tecator_present else None,
            [os.path.basename(tecator_path)],
            TECATOR_SOURCE,
        )
    )
    return entries


def _entry(name, present, problem, location, files, source):
    if not present:
        state = "missing"
    else:
        state = "damaged" if problem is not None else "present"
    return {
        "name": name,
        "state": state,
        "present": present,
        "location": location,
        "files": files,
        "problem": problem,
        "source": source,
    }


__all__ = [
    "DamagedFileError",
    "DatasetNotFoundError",
    "affnist",
    "cifar10",
    "fashion_mnist",
    "mnist",
    "smallnorb",
    "status",
    "tecator",
]


def __getattr__(name):
    # The original's `from keras.datasets import *`: Keras' names stay reachable.
    import keras

    from anysma._identifiers import keras_attribute

    return keras_attribute(keras.datasets, __name__, name)
