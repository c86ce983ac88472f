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
place (`os.replace`); a mismatching one is deleted.
"""

import dataclasses
import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request

import numpy as np

DATA_DIR_ENV = "ANYSMA_DATA_DIR"
CACHE_DIR_ENV = "ANYSMA_CACHE_DIR"
DEFAULT_CACHE_DIR = os.path.join("~", ".anysma")
_CHUNK_SIZE = 1 << 20


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are neither on disk nor downloadable right now."""


class DownloadError(OSError):
    """A file could not be fetched from its URL (network or server error)."""


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """A file published at `url` whose bytes have the sha256 `sha256`."""

    name: str
    url: str
    sha256: str
    size: int


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
    """

    name: str
    title: str
    source: str
    remote_files: tuple
    layouts: tuple
    aliases: tuple = ()


def cache_dir(subdir="datasets"):
    """Return `<ANYSMA_CACHE_DIR or ~/.anysma>/<subdir>` (not created)."""
    root = os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR
    return os.path.join(os.path.abspath(os.path.expanduser(root)), subdir)


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


def file_sha256(path):
    """Return the hex sha256 digest of the file at `path`."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(value, argument="sha256"):
    """Return `value` lower-cased if it is a 64-digit hex string."""
    if not isinstance(value, str) or len(value) != 64:
        raise ValueError(
            f"`{argument}` must be a sha256 hex digest of 64 characters. "
            f"Received: {argument}={value!r}"
        )
    try:
        int(value, 16)
    except ValueError:
        raise ValueError(
            f"`{argument}` must be a sha256 hex digest of 64 characters. "
            f"Received: {argument}={value!r}"
        ) from None
    return value.lower()


def _user_agent():
    from anysma.version import __version__

    return f"anysma/{__version__} (Python urllib)"


def download(url, path, sha256, verbose=True, timeout=60):
    """Download `url` to `path`, keeping the file only if its sha256 matches.

    The bytes are streamed into a temporary file in the destination folder,
    hashed on the way, and renamed to `path` only when the digest equals
    `sha256`. Nothing is left behind on any failure. `file://` URLs work too.

    Args:
        url: Where to get the file.
        path: Destination file; its folder is created if needed.
        sha256: Expected hex sha256 digest of the file's bytes.
        verbose: Print a progress bar (Keras `Progbar`) to stdout.
        timeout: Socket timeout in seconds.

    Returns:
        `path`.

    Raises:
        ValueError: The downloaded bytes have another sha256 (the message
            names the file and both digests); the partial file is removed.
        DownloadError: The URL could not be read.
    """
    sha256 = check_sha256(sha256)
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".part", dir=folder
    )
    try:
        digest = hashlib.sha256()
        request = urllib.request.Request(url, headers={"User-Agent": _user_agent()})
        with os.fdopen(descriptor, "wb") as output:
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    total = response.headers.get("Content-Length")
                    progress = None
                    if verbose:
                        import keras

                        print(f"Downloading {url}", file=sys.stderr)
                        progress = keras.utils.Progbar(
                            int(total) if total else None, unit_name="byte"
                        )
                    received = 0
                    for chunk in iter(lambda: response.read(_CHUNK_SIZE), b""):
                        digest.update(chunk)
                        output.write(chunk)
                        received += len(chunk)
                        if progress is not None:
                            progress.update(received)
            except (OSError, http.client.HTTPException) as error:
                if isinstance(error, urllib.error.URLError) and not isinstance(
                    error, urllib.error.HTTPError
                ):
                    error = error.reason
                raise DownloadError(f"Could not download {url}: {error}") from error
        received_sha256 = digest.hexdigest()
        if received_sha256 != sha256:
            raise ValueError(
                f"The file downloaded from {url} for {path} is corrupted or not the "
                f"expected one: its sha256 is {received_sha256}, expected {sha256}. "
                "It was deleted."
            )
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path


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


def fetch(spec, data_dir=None, download_missing=True, verbose=True):
    """Find `spec`'s files, downloading the official ones when missing.

    Returns:
        `(layout_index, paths)` as for `find`.

    Raises:
        DatasetNotFoundError: The files are not on disk and were not
            downloaded (download disabled or failed).
        ValueError: A downloaded file has the wrong sha256.
    """
    found = find(spec, data_dir)
    if found is not None:
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


def read_npz(path, keys):
    """Read the arrays `keys` from the `.npz` file at `path` (no pickles)."""
    with np.load(path, allow_pickle=False) as archive:
        missing = [key for key in keys if key not in archive.files]
        if missing:
            raise ValueError(
                f"{path} lacks the arrays {missing}; expected the keys {list(keys)}. "
                f"Received keys: {sorted(archive.files)}"
            )
        return [archive[key] for key in keys]
