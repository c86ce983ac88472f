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
"""

import os

from anysma.datasets import affnist
from anysma.datasets import cifar10
from anysma.datasets import fashion_mnist
from anysma.datasets import mnist
from anysma.datasets import smallnorb
from anysma.datasets import tecator
from anysma.datasets._files import DatasetNotFoundError

_DOWNLOADABLE = (mnist, fashion_mnist, cifar10, affnist, smallnorb)
TECATOR_SOURCE = "http://lib.stat.cmu.edu/datasets/tecator"


def status(data_dir=None):
    """Report, for every dataset, whether and where its files are on disk.

    Nothing is downloaded or read beyond checking that files exist.

    Args:
        data_dir: Folder(s) to search first, as for the loaders.

    Returns:
        A list of dicts, one per dataset (`mnist`, `fashion_mnist`,
        `cifar10`, `affnist`, `smallnorb`, `tecator`), with the keys
        `"name"`, `"present"` (bool), `"location"` (the folder holding the
        files, or `None`), `"files"` (the files found, or the official file
        names when absent) and `"source"` (where the data comes from).

    Example:

    >>> for entry in status():  # doctest: +SKIP
    ...     print(entry["name"], entry["present"], entry["location"])
    """
    from anysma.datasets import _files

    entries = []
    for module in _DOWNLOADABLE:
        spec = module.SPEC
        found = _files.find(spec, data_dir)
        if found is None:
            location = None
            files = [remote.name for remote in spec.remote_files]
        else:
            _, location, paths = found
            files = [os.path.relpath(path, location) for path in paths]
        entries.append(
            {
                "name": spec.name,
                "present": found is not None,
                "location": location,
                "files": files,
                "source": spec.source,
            }
        )
    tecator_path = tecator._path()
    tecator_present = os.path.isfile(tecator_path)
    entries.append(
        {
            "name": "tecator",
            "present": tecator_present,
            "location": os.path.dirname(tecator_path) if tecator_present else None,
            "files": [os.path.basename(tecator_path)],
            "source": TECATOR_SOURCE,
        }
    )
    return entries


__all__ = [
    "DatasetNotFoundError",
    "affnist",
    "cifar10",
    "fashion_mnist",
    "mnist",
    "smallnorb",
    "status",
    "tecator",
]
