"""Downloading, hashing and caching files, shared by datasets and weights.

Everything here is independent of what a file holds: the sha256-checked
download (`https://` only, streamed into a temporary file that is renamed
into place when its digest matches), digests cached per file version, the
cache folder `<ANYSMA_CACHE_DIR or ~/.anysma>/<subdir>`, argument checks for
URLs, plain file names and digests, and `damage_guard`, which turns decoding
errors into a `DamagedFileError` naming the file.
"""

import contextlib
import gzip
import hashlib
import http.client
import os
import pickle
import struct
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib

CACHE_DIR_ENV = "ANYSMA_CACHE_DIR"
DEFAULT_CACHE_DIR = os.path.join("~", ".anysma")
_CHUNK_SIZE = 1 << 20


class DownloadError(OSError):
    """A file could not be fetched from its URL (network or server error)."""


class DamagedFileError(ValueError):
    """A dataset or weights file on disk is damaged or is not the expected file.

    Raised for truncated or corrupted files, files that cannot be decoded,
    files whose content does not fit the dataset (shapes, dtypes, label
    range), and files whose sha256 shows that they are another published
    file. The message names the file, says what is wrong and how to get a
    good copy; the attributes `path`, `problem` and `remedy` hold the parts.

    Example:

    >>> error = DamagedFileError("/data/mnist.npz", "it is truncated",
    ...                          "Download it again.")
    >>> str(error)
    '/data/mnist.npz: it is truncated. The file is damaged or not the expected one. Download it again.'
    """  # noqa: E501

    def __init__(self, path, problem, remedy=""):
        # All three in `args`, so that the error survives pickling.
        super().__init__(os.fspath(path), str(problem), str(remedy))

    @property
    def path(self):
        return self.args[0]

    @property
    def problem(self):
        return self.args[1]

    @property
    def remedy(self):
        return self.args[2]

    def __str__(self):
        path, problem, remedy = self.args
        # Decoders often name the file already; do not repeat it.
        text = " ".join(problem.split()) or "it cannot be read"
        if path not in text:
            text = f"{path}: {text}"
        if not text.endswith("."):
            text += "."
        text += " The file is damaged or not the expected one."
        if remedy:
            text += " " + remedy
        return text


#: URL schemes a registry entry or download may use (see the module docstring).
ALLOWED_URL_SCHEMES = ("https", "file")


def check_url(url, argument="url"):
    """Return `url` if it is an `https://` or `file://` URL, else raise.

    Plain `http://` (and anything else) is refused: the bytes could be
    changed on the way, and a registry should not point there.

    Raises:
        ValueError: `url` is no string or has another scheme.
    """
    scheme = urllib.parse.urlsplit(url).scheme.lower() if isinstance(url, str) else ""
    if scheme not in ALLOWED_URL_SCHEMES or "://" not in url:
        raise ValueError(
            f"`{argument}` must be an https:// URL (or a file:// URL of a local "
            f"file). Received: {argument}={url!r}"
        )
    return url


def check_file_name(name, argument="name"):
    """Return `name` if it is a plain file name that stays inside its folder.

    Raises:
        ValueError: `name` is empty, `.` or `..`, absolute, or contains a
            path separator.
    """
    separators = {"/", "\\", os.sep} | ({os.altsep} if os.altsep else set())
    if (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or any(separator in name for separator in separators)
        or "\0" in name
        or os.path.isabs(name)
    ):
        raise ValueError(
            f"`{argument}` must be a plain file name without path separators or "
            f"'..', so that the file stays inside its folder. "
            f"Received: {argument}={name!r}"
        )
    return name


def cache_dir(subdir="datasets"):
    """Return `<ANYSMA_CACHE_DIR or ~/.anysma>/<subdir>` (not created)."""
    root = os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR
    return os.path.join(os.path.abspath(os.path.expanduser(root)), subdir)


def file_sha256(path):
    """Return the hex sha256 digest of the file at `path`."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


#: (absolute path, size, mtime in ns) -> sha256, so repeated loads hash once.
_SHA256_CACHE = {}


def cached_file_sha256(path):
    """`file_sha256(path)`, remembered in the process per (path, size, mtime).

    A file that is replaced or modified gets another size or modification
    time and is hashed again.
    """
    path = os.path.abspath(os.fspath(path))
    info = os.stat(path)
    key = (path, info.st_size, info.st_mtime_ns)
    digest = _SHA256_CACHE.get(key)
    if digest is None:
        digest = file_sha256(path)
        _SHA256_CACHE[key] = digest
    return digest


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


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to `https://` URLs.

    urllib would follow a redirect from https to plain http; the download
    must not silently leave an encrypted connection.
    """

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        target = urllib.parse.urljoin(req.full_url, newurl)
        if urllib.parse.urlsplit(target).scheme.lower() != "https":
            raise DownloadError(
                f"{req.full_url} redirects to {target}, which is not https; "
                "the download was refused."
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _user_agent():
    from anysma.version import __version__

    return f"anysma/{__version__} (Python urllib)"


def download(url, path, sha256, verbose=True, timeout=60):
    """Download `url` to `path`, keeping the file only if its sha256 matches.

    The bytes are streamed into a temporary file in the destination folder,
    hashed on the way, and renamed to `path` only when the digest equals
    `sha256`. Nothing is left behind on any failure. `file://` URLs work too.

    Args:
        url: Where to get the file: an `https://` URL, or a `file://` URL of
            a local file; redirects to other schemes are refused.
        path: Destination file; its folder is created if needed.
        sha256: Expected hex sha256 digest of the file's bytes.
        verbose: Print a progress bar (Keras `Progbar`) to stdout.
        timeout: Socket timeout in seconds.

    Returns:
        `path`.

    Raises:
        ValueError: `url` is not `https://` or `file://`, or the downloaded
            bytes have another sha256 (the message names the file and both
            digests); the partial file is removed.
        DownloadError: The URL could not be read.
    """
    check_url(url)
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
                opener = urllib.request.build_opener(_HttpsOnlyRedirects)
                with opener.open(request, timeout=timeout) as response:
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


#: Decoding errors that mean "the bytes are not what they should be": they
#: become a `DamagedFileError` naming the file (see `damage_guard`).
DECODE_ERRORS = (
    ValueError,
    EOFError,
    OverflowError,
    zlib.error,
    zipfile.BadZipFile,
    tarfile.TarError,
    gzip.BadGzipFile,
    pickle.UnpicklingError,
    struct.error,
)


@contextlib.contextmanager
def damage_guard(path, remedy_text="", errors=DECODE_ERRORS):
    """Turn decoding errors raised inside the block into `DamagedFileError`.

    A missing file, a folder in its place or a missing permission is no
    damage: those errors pass unchanged even when `errors` names `OSError`.

    Args:
        path: The file being decoded, named in the error.
        remedy_text: How to get a good copy (see `remedy`).
        errors: The exception types to convert.
    """
    try:
        yield
    except (DamagedFileError, FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except errors as error:
        problem = str(error) or type(error).__name__
        raise DamagedFileError(path, problem, remedy_text) from error
