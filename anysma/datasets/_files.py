"""Finding dataset files on disk and downloading them with a sha256 check.

Where a dataset's files are looked for, in this order:

1. the folder(s) given as `data_dir=` to a loader;
2. the folders listed in the environment variable `ANYSMA_DATA_DIR`
   (several folders separated by `os.pathsep`, `:` on Linux and macOS);
3. the download cache `<ANYSMA_CACHE_DIR>/datasets`, where
   `ANYSMA_CACHE_DIR` defaults to `~/.anysma`.

In each folder, a dataset's files may lie in a subfolder named after the
dataset (`<folder>/cifar10/cifar-10-python.tar.gz`) or directly in the folder
(`<folder>/cifar-10-python.tar.gz`). Files with generic names (MNIST's and
Fashion-MNIST's IDX files share theirs, affNIST's is `test.mat.zip`) are
taken directly from a folder only when that folder was given as `data_dir`;
in the shared folders they must be in the dataset's subfolder, so that one
dataset is never silently loaded in place of another.

Downloads go to `<ANYSMA_CACHE_DIR>/datasets/<dataset>/`. Each file is
streamed into a temporary file next to its destination, its sha256 is
compared with the published value, and only a matching file is renamed into
place (`os.replace`); a mismatching one is deleted. Only `https://` URLs are
downloaded (a redirect to another scheme is refused); `file://` URLs are
accepted too, because they read a local file the caller named and cross no
network (the tests serve their "remote" files that way).

Files found on disk are checked against the published sha256 values (the
official files, plus files such as Keras' `mnist.npz` listed in
`DatasetSpec.published`), of every dataset of the package:

- a file with the digest of its own published file is the genuine one;
- a file with the digest of another published file (e.g. Fashion-MNIST's
  file put where MNIST's belongs) is rejected with `DamagedFileError`;
- a file with the size of its published file but another digest is a
  damaged copy and is rejected;
- any other file (no hash is published for its name, or it has another size:
  a conversion of your own, a subset, the synthetic files of
  `anysma.testing.datasets`) is not the published file, and the loaders
  check only its content (shapes, dtypes, label range, lengths).

A file's size decides whether it can be a published file at all, so only
files of a published size are hashed; the digest is cached in the process
per (path, size, modification time).
"""

import dataclasses
import os
import zipfile

import numpy as np

from anysma.utils.downloads import CACHE_DIR_ENV  # noqa: F401
from anysma.utils.downloads import DECODE_ERRORS  # noqa: F401
from anysma.utils.downloads import DamagedFileError
from anysma.utils.downloads import DownloadError  # noqa: F401
from anysma.utils.downloads import cache_dir
from anysma.utils.downloads import cached_file_sha256
from anysma.utils.downloads import check_file_name
from anysma.utils.downloads import check_sha256
from anysma.utils.downloads import check_url
from anysma.utils.downloads import damage_guard
from anysma.utils.downloads import download
from anysma.utils.downloads import file_sha256  # noqa: F401

DATA_DIR_ENV = "ANYSMA_DATA_DIR"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are neither on disk nor downloadable right now."""


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """A file published at `url` whose bytes have the sha256 `sha256`.

    `name` is the local file name (a plain name, checked), `url` an
    `https://` (or `file://`) URL, `size` the number of bytes.
    """

    name: str
    url: str
    sha256: str
    size: int

    def __post_init__(self):
        check_file_name(self.name, "name")
        check_url(self.url, "url")
        object.__setattr__(self, "sha256", check_sha256(self.sha256))


@dataclasses.dataclass(frozen=True)
class Layout:
    """One accepted way of storing a dataset on disk.

    Attributes:
        files: One entry per needed file: a tuple of accepted relative paths
            (e.g. the gzipped and the plain name), the first existing wins.
        distinctive: Whether the names are specific enough to be taken
            directly from a shared folder (see the module docstring).
    """

    files: tuple
    distinctive: bool


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset comes from and how it may lie on disk.

    Attributes:
        name: Identifier, also the subfolder name (`"mnist"`).
        title: Human-readable name for messages (`"MNIST"`).
        source: The page or folder URL the files come from.
        remote_files: The official files, downloaded on demand.
        layouts: Accepted layouts; the first one is the downloaded one.
        aliases: Further accepted subfolder names (`"fashion-mnist"`).
        published: Further files whose exact bytes are published (e.g.
            Keras' `mnist.npz`), as `RemoteFile`s: local copies are checked
            against them, but they are not downloaded.
    """

    name: str
    title: str
    source: str
    remote_files: tuple
    layouts: tuple
    aliases: tuple = ()
    published: tuple = ()

    @property
    def known_files(self):
        """All files of the dataset with a published sha256."""
        return (*self.remote_files, *self.published)


def _split_dirs(value):
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        value = [value]
    folders = []
    for entry in value:
        if not isinstance(entry, (str, os.PathLike)):
            raise TypeError(
                "`data_dir` must be a path or a list of paths. "
                f"Received: data_dir={value!r}"
            )
        folders.append(os.path.abspath(os.path.expanduser(os.fspath(entry))))
    return folders


def search_roots(data_dir=None):
    """Return `[(folder, explicit), ...]` in search order.

    `explicit` is True for folders given as `data_dir`.
    """
    roots = [(folder, True) for folder in _split_dirs(data_dir)]
    env_value = os.environ.get(DATA_DIR_ENV, "")
    env_dirs = [entry for entry in env_value.split(os.pathsep) if entry]
    roots += [(folder, False) for folder in _split_dirs(env_dirs)]
    roots.append((cache_dir("datasets"), False))
    unique, seen = [], set()
    for folder, explicit in roots:
        if folder not in seen:
            seen.add(folder)
            unique.append((folder, explicit))
    return unique


def _candidate_folders(spec, folder, explicit, layout):
    subfolders = [os.path.join(folder, name) for name in (spec.name, *spec.aliases)]
    if explicit or layout.distinctive:
        return [*subfolders, folder]
    return subfolders


def _match_layout(folder, layout):
    paths = []
    for options in layout.files:
        for relative_path in options:
            candidate = os.path.join(folder, relative_path)
            if os.path.isfile(candidate):
                paths.append(candidate)
                break
        else:
            return None
    return paths


def searched_folders(spec, data_dir=None):
    """All folders `find` looks into for `spec`, in order (for messages)."""
    folders = []
    for folder, explicit in search_roots(data_dir):
        for layout in spec.layouts:
            for candidate in _candidate_folders(spec, folder, explicit, layout):
                if candidate not in folders:
                    folders.append(candidate)
    return folders


def find(spec, data_dir=None):
    """Look for a complete layout of `spec`'s files on disk.

    Returns:
        `(layout_index, folder, paths)` for the first folder in search order
        that holds all files of one layout, or `None`.
    """
    for folder, explicit in search_roots(data_dir):
        # Within one root, the dataset's own subfolder is preferred.
        for layout_index, layout in enumerate(spec.layouts):
            for candidate in _candidate_folders(spec, folder, explicit, layout):
                paths = _match_layout(candidate, layout)
                if paths is not None:
                    return layout_index, candidate, paths
    return None


def _describe_layout(layout):
    names = [options[0] for options in layout.files]
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


def not_found_message(spec, data_dir, reason):
    """One paragraph: what is missing, where to get it, where to put it."""
    layouts = " or ".join(_describe_layout(layout) for layout in spec.layouts)
    urls = ", ".join(remote.url for remote in spec.remote_files)
    folders = ", ".join(searched_folders(spec, data_dir))
    destination = os.path.join(cache_dir("datasets"), spec.name)
    generic = ""
    if not all(layout.distinctive for layout in spec.layouts):
        generic = (
            f" Files with generic names must be in a subfolder named '{spec.name}' "
            "unless their folder is passed as `data_dir`."
        )
    return (
        f"{spec.title} was not found: no searched folder holds {layouts}. "
        f"Searched: {folders}. {reason} Get the files from {urls} (see "
        f"{spec.source}) and put them into {destination}, into a folder passed "
        f"as `data_dir`, or into a folder listed in the {DATA_DIR_ENV} "
        f"environment variable (several folders separated by {os.pathsep!r})."
        f"{generic}"
    )


def remedy(spec):
    """How to get a good copy of `spec`'s files (one sentence, for messages)."""
    urls = ", ".join(remote.url for remote in spec.remote_files)
    destination = os.path.join(cache_dir("datasets"), spec.name)
    return (
        f"To get a good copy, delete or move this file and load {spec.title} "
        f"again: the official files are then downloaded from {urls} into "
        f"{destination} and their sha256 is checked (see {spec.source})."
    )


def _package_specs():
    # Imported here: the dataset modules import this one.
    from anysma.datasets import affnist
    from anysma.datasets import cifar10
    from anysma.datasets import fashion_mnist
    from anysma.datasets import mnist
    from anysma.datasets import smallnorb

    return [
        module.SPEC for module in (mnist, fashion_mnist, cifar10, affnist, smallnorb)
    ]


def _published_index(spec):
    """`({sha256: (title, name)}, {sizes})` of all published files.

    Covers the package's datasets and `spec` (which may be a caller's own).
    Built on each call (a few dozen entries), so replaced specs are seen.
    """
    by_digest, sizes = {}, set()
    for each in (spec, *_package_specs()):
        for known in each.known_files:
            by_digest.setdefault(known.sha256, (each.title, known.name))
            sizes.add(known.size)
    return by_digest, sizes


def verify_published(spec, path):
    """Check a found file of `spec` against the published sha256 values.

    See the module docstring for the rules.

    Returns:
        `True` if the file is a published file of `spec` (its digest
        matches), `None` if it cannot be one (no published file has its
        size), so that only its content can be checked.

    Raises:
        DamagedFileError: The file is another published file, or has the
            size of its published file but another digest.
    """
    name = os.path.basename(path)
    own = [known for known in spec.known_files if known.name == name]
    by_digest, sizes = _published_index(spec)
    size = os.path.getsize(path)
    if size not in sizes:
        return None
    digest = cached_file_sha256(path)
    if any(known.sha256 == digest for known in own):
        return True
    if digest in by_digest:
        title, other = by_digest[digest]
        expected = f"{spec.title}'s {name}"
        raise DamagedFileError(
            path,
            f"its sha256 {digest} is that of {title}'s {other}, not of {expected}",
            remedy(spec),
        )
    for known in own:
        if known.size == size:
            raise DamagedFileError(
                path,
                f"it has the size of the published {name} ({size} bytes) but its "
                f"sha256 is {digest}, expected {known.sha256}",
                remedy(spec),
            )
    return None


def quick_check(spec, path):
    """Cheap checks of a found file, without decoding it (for `status`).

    The published sha256 (`verify_published`), and for zip-based files
    (`.npz`, `.zip`) that the zip directory at the end of the file can be
    read, which fails for truncated files.

    Raises:
        DamagedFileError: The file is damaged or another published file.
    """
    verify_published(spec, path)
    if path.endswith((".npz", ".zip")):
        with damage_guard(path, remedy(spec)):
            with zipfile.ZipFile(path):
                pass


def fetch(spec, data_dir=None, download_missing=True, verbose=True):
    """Find `spec`'s files, downloading the official ones when missing.

    Files found on disk are checked with `verify_published`.

    Returns:
        `(layout_index, paths)` as for `find`.

    Raises:
        DatasetNotFoundError: The files are not on disk and were not
            downloaded (download disabled or failed).
        DamagedFileError: A found file is damaged or another published file.
        ValueError: A downloaded file has the wrong sha256.
    """
    found = find(spec, data_dir)
    if found is not None:
        for path in found[2]:
            verify_published(spec, path)
        return found[0], found[2]
    if not download_missing:
        raise DatasetNotFoundError(
            not_found_message(spec, data_dir, "Downloading is off (download=False).")
        )
    folder = os.path.join(cache_dir("datasets"), spec.name)
    paths = []
    for remote in spec.remote_files:
        path = os.path.join(folder, remote.name)
        if not os.path.isfile(path):
            try:
                download(remote.url, path, remote.sha256, verbose=verbose)
            except OSError as error:
                reason = f"Downloading failed ({error})."
                raise DatasetNotFoundError(
                    not_found_message(spec, data_dir, reason)
                ) from error
        paths.append(path)
    return 0, paths


def read_npz(path, keys, remedy_text=""):
    """Read the arrays `keys` from the `.npz` file at `path` (no pickles).

    Raises:
        DamagedFileError: The file is no readable `.npz` (e.g. truncated or
            corrupted) or lacks one of `keys`; the message names `path` and
            ends with `remedy_text`.
    """
    # The file is opened here, not by np.load, which leaves its handle open
    # when the archive turns out to be damaged.
    with damage_guard(path, remedy_text), open(path, "rb") as stream:
        archive = np.load(stream, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("it is a single .npy array, not an .npz archive")
        with archive:
            missing = [key for key in keys if key not in archive.files]
            if missing:
                raise ValueError(
                    f"{path} lacks the arrays {missing}; expected the keys "
                    f"{list(keys)}. Received keys: {sorted(archive.files)}"
                )
            # Reading every array here makes a damaged member fail now.
            return [archive[key] for key in keys]
