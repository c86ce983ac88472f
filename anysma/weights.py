"""A registry of pretrained weights, downloaded on demand with a sha256 check.

`REGISTRY` maps a name to `{"url", "sha256", "experiment", "description"}`.
anysma ships it empty: the 2018 original's weight files (`mnist`,
`cifar10`, `smallnorb48`, `smallnorb48_el`, `smallnorb48_az`) were Keras 2
HDF5 files behind links that no longer resolve, and no Keras 3 weights have
been published yet. To share weights you trained:

1. `entry = export_weights(model, "lvq_caps_mnist.weights.h5", name="mnist")`
   saves the weights and writes `lvq_caps_mnist.weights.h5.json` with their
   sha256 and size;
2. upload the `.weights.h5` file somewhere stable;
3. `register_weights("mnist", url, entry["sha256"])` in code, or list the
   entry in a JSON file named by the environment variable
   `ANYSMA_WEIGHTS_REGISTRY`; then `get_weights("mnist")` downloads and
   verifies the file and returns its local path.

The JSON file holds either an object mapping names to entries
(`{"mnist": {"url": ..., "sha256": ...}}`), a list of entries with a
`"name"`, or one entry as `export_weights` writes it. An entry without
`"url"` but with `"file"` refers to that file next to the JSON file; the
`"file"` must be a plain file name (no path separators, no `..`), so an
entry cannot reach outside its folder. Several files may be listed,
separated by `os.pathsep`; entries registered in code take precedence.

URLs must be `https://`; `file://` URLs of local files are accepted too
(they cross no network, and every file is checked against its sha256
anyway), plain `http://` and other schemes are refused. Registry names are
plain names such as `mnist`: no path separators, not starting with `.` or
`~`, not ending in `.h5`, `.hdf5` or `.keras`.

`get_weights(value)` decides by the form of `value` alone whether it is a
path or a registry name, never by what happens to exist in the current
folder: a `pathlib.Path`, or a string that contains a path separator,
starts with `.` or `~`, or ends in `.h5`, `.hdf5` or `.keras`, is a path;
anything else is a registry name, resolved through the registry and its
sha256 even when a file of that name lies in the current folder (pass
`./mnist` to mean the file).

Downloads go to `<ANYSMA_CACHE_DIR>/weights` (default `~/.anysma/weights`),
streamed into a temporary file and kept only if the sha256 matches. Every
file `get_weights` returns has been opened and read as HDF5 (or, for
`.keras`, as a zip); a damaged file raises
`anysma.datasets.DamagedFileError`, a `ValueError` naming the file.
"""

import json
import os
import pathlib

from anysma.utils import downloads
from anysma.utils.files import write_atomically

REGISTRY_ENV = "ANYSMA_WEIGHTS_REGISTRY"
WEIGHTS_SUFFIX = ".weights.h5"
#: Endings that make `get_weights` treat its argument as a path.
PATH_SUFFIXES = (".h5", ".hdf5", ".keras")

#: name -> {"url", "sha256", "experiment", "description"}; empty: nothing is
#: published yet.
REGISTRY = {}

#: The original's pretrained weights -> how to make them with anysma.
ORIGINAL_WEIGHTS = {
    "mnist": "anysma run lvq_caps_mnist",
    "cifar10": "anysma run lvq_caps_cifar10",
    "smallnorb48": "anysma run lvq_caps_smallnorb48 --setting normal",
    "smallnorb48_el": "anysma run lvq_caps_smallnorb48 --setting elevation",
    "smallnorb48_az": "anysma run lvq_caps_smallnorb48 --setting azimuth",
}


def looks_like_path(value):
    """Whether `get_weights` treats `value` as a path (see the module docstring).

    Example:

    >>> looks_like_path("mnist"), looks_like_path("./mnist")
    (False, True)
    >>> looks_like_path("final.weights.h5")
    True
    """
    if isinstance(value, os.PathLike):
        return True
    separators = ("/", os.sep) + ((os.altsep,) if os.altsep else ())
    return (
        any(separator in value for separator in separators)
        or value.startswith((".", "~"))
        or value.endswith(PATH_SUFFIXES)
    )


def _check_name(name, where=""):
    if (
        not isinstance(name, str)
        or not name.strip()
        or "\\" in name
        or looks_like_path(name)
    ):
        raise ValueError(
            f"`name` must be a non-empty string without slashes that does not "
            f"look like a path (no leading '.' or '~', no ending "
            f"{', '.join(PATH_SUFFIXES)}){where}. Received: name={name!r}"
        )
    return name


def _check_url(url, name, where=""):
    try:
        return downloads.check_url(url)
    except ValueError:
        raise ValueError(
            f"`url` of weights {name!r}{where} must be an https:// URL (or a "
            f"file:// URL of a local file); plain http:// and other schemes are "
            f"refused. Received: url={url!r}"
        ) from None


def _make_entry(name, url, sha256, experiment=None, description="", source=None):
    where = f" in {source}" if source else ""
    _check_name(name, where)
    _check_url(url, name, where)
    if experiment is not None and not isinstance(experiment, str):
        raise ValueError(
            f"`experiment` of weights {name!r}{where} must be a string or None. "
            f"Received: experiment={experiment!r}"
        )
    if not isinstance(description, str):
        raise ValueError(
            f"`description` of weights {name!r}{where} must be a string. "
            f"Received: description={description!r}"
        )
    return {
        "url": url,
        "sha256": downloads.check_sha256(sha256),
        "experiment": experiment,
        "description": description,
    }


def register_weights(
    name, url, sha256, experiment=None, description="", overwrite=False
):
    """Add pretrained weights to `REGISTRY` so `get_weights(name)` finds them.

    Args:
        name: Registry name, e.g. `"mnist"` (no path separators, see the
            module docstring).
        url: Where the `.weights.h5` file is published: `https://`, or
            `file://` for a local file; `http://` is refused.
        sha256: Hex sha256 of the file; downloads with another digest are
            rejected and deleted.
        experiment: Name of the experiment whose model the weights fit.
        description: Free text.
        overwrite: Replace an existing entry of the same name.

    Returns:
        The new registry entry (a dict).

    Example (not run by the test suite: it would change the registry of
    the running session):

    >>> register_weights(  # doctest: +SKIP
    ...     "mnist", "https://example.org/mnist.weights.h5", "ab12…",
    ...     experiment="lvq_caps_mnist")
    """
    entry = _make_entry(name, url, sha256, experiment, description)
    if name in REGISTRY and REGISTRY[name] != entry and not overwrite:
        raise ValueError(
            f"Weights named {name!r} are already registered "
            f"({REGISTRY[name]['url']}); pass overwrite=True to replace them."
        )
    REGISTRY[name] = entry
    return dict(entry)


def _entries_from_file(path):
    try:
        with open(path, encoding="utf-8") as stream:
            content = json.load(stream)
    except OSError as error:
        raise ValueError(
            f"The weights registry {path} named by {REGISTRY_ENV} cannot be read: "
            f"{error}"
        ) from error
    except json.JSONDecodeError as error:
        raise ValueError(
            f"The weights registry {path} named by {REGISTRY_ENV} is not valid "
            f"JSON: {error}"
        ) from error
    if isinstance(content, dict) and "name" in content and "sha256" in content:
        items = [(content["name"], content)]
    elif isinstance(content, dict):
        items = list(content.items())
    elif isinstance(content, list):
        items = [
            (item.get("name") if isinstance(item, dict) else None, item)
            for item in content
        ]
    else:
        raise ValueError(
            f"The weights registry {path} must hold a JSON object or list. "
            f"Received: {type(content).__name__}"
        )
    folder = os.path.dirname(os.path.abspath(path))
    entries = {}
    for name, item in items:
        if not isinstance(item, dict):
            raise ValueError(
                f"Entry {name!r} of the weights registry {path} must be an object. "
                f"Received: {item!r}"
            )
        url = item.get("url")
        if url is None and item.get("file"):
            try:
                file_name = downloads.check_file_name(item["file"], "file")
            except ValueError as error:
                raise ValueError(
                    f"Entry {name!r} of the weights registry {path}: {error}"
                ) from None
            url = pathlib.Path(folder, file_name).as_uri()
        entries[name] = _make_entry(
            name,
            url,
            item.get("sha256"),
            item.get("experiment"),
            item.get("description", ""),
            source=path,
        )
    return entries


def registered_weights():
    """Return all known weights: `ANYSMA_WEIGHTS_REGISTRY`'s, then `REGISTRY`.

    Returns:
        A dict name -> entry (`url`, `sha256`, `experiment`, `description`).
    """
    entries = {}
    for path in os.environ.get(REGISTRY_ENV, "").split(os.pathsep):
        if path:
            entries.update(_entries_from_file(os.path.expanduser(path)))
    entries.update(REGISTRY)
    return {name: dict(entry) for name, entry in entries.items()}


def _no_weights_message(name, known):
    listed = ", ".join(sorted(known)) if known else "none"
    if name in ORIGINAL_WEIGHTS:
        return (
            f"No pretrained weights named {name!r} have been published for anysma "
            "yet (the 2018 original's Keras 2 file is not available). Train them "
            f"with `{ORIGINAL_WEIGHTS[name]}`, then pass the saved .weights.h5 file "
            "instead of the name, or share it: anysma.weights.export_weights(model, "
            f"path, name={name!r}) writes its sha256, and register_weights(...) or "
            f"a JSON file named by {REGISTRY_ENV} adds it to the registry. "
            f"Registered weights: {listed}."
        )
    return (
        "`name_or_path` must be a path to a weights file (e.g. "
        "'./model.weights.h5') or the name of registered weights. "
        f"Received: name_or_path={name!r}. Registered weights: {listed}."
    )


def weights_cache_dir():
    """Return `<ANYSMA_CACHE_DIR or ~/.anysma>/weights`."""
    return downloads.cache_dir("weights")


def _weights_remedy(name=None, entry=None):
    if entry is not None:
        return (
            f"To get a good copy, delete it and call get_weights({name!r}) again, "
            f"which downloads {entry['url']} and checks its sha256."
        )
    return (
        "To get a good copy, save the weights again (anysma.weights.export_weights "
        "or the experiment that wrote them) or fetch the file again from where "
        "it came from."
    )


def check_weights_file(path, remedy=""):
    """Check that `path` is a readable Keras weights file; return `path`.

    A `.keras` file must be a zip archive whose members pass their CRC
    check; any other file must be an HDF5 file (`.weights.h5`) that h5py
    can open and whose datasets can all be read, which catches garbage,
    truncated files and damaged metadata. (HDF5 stores no checksums of the
    values, so a flipped bit inside a weight is not detected.)

    Args:
        path: The file.
        remedy: How to get a good copy, appended to the message.

    Returns:
        `path`.

    Raises:
        anysma.datasets.DamagedFileError: The file is damaged or no weights
            file (a `ValueError` naming `path`).

    Example (not run by the test suite: it needs a trained weights
    file):

    >>> check_weights_file("final.weights.h5")  # doctest: +SKIP
    'final.weights.h5'
    """
    import zipfile

    path = os.fspath(path)
    remedy = remedy or _weights_remedy()
    if path.endswith(".keras"):
        with downloads.damage_guard(path, remedy):
            with zipfile.ZipFile(path) as archive:
                broken = archive.testzip()
            if broken is not None:
                raise ValueError(f"its member {broken} fails the CRC check")
        return path
    import h5py

    def read(name, item):
        if isinstance(item, h5py.Dataset):
            item[()]

    # h5py reports damaged files as OSError ("file signature not found",
    # "truncated file"), sometimes as RuntimeError or KeyError.
    errors = (*downloads.DECODE_ERRORS, OSError, RuntimeError, KeyError)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No weights file at {path!r}.")
    with downloads.damage_guard(path, remedy):
        try:
            with h5py.File(path, "r") as handle:
                handle.visititems(read)
        except (FileNotFoundError, PermissionError, IsADirectoryError):
            raise
        except errors as error:
            # Say what was expected: h5py's own words are terse.
            raise ValueError(
                f"it is not a readable HDF5 weights file ({error})"
            ) from error
    return path


def get_weights(name_or_path, cache_dir=None, verbose=True):
    """Return the local path of pretrained weights, downloading them if needed.

    Whether `name_or_path` is a path or a registry name is decided by its
    form alone (`looks_like_path`): a `pathlib.Path`, or a string with a
    path separator, a leading `.` or `~`, or the ending `.h5`, `.hdf5` or
    `.keras`, is a path; anything else is a registry name, looked up in the
    registry and checked against its sha256 even if a file of that name
    exists in the current folder. The returned file is checked with
    `check_weights_file`.

    Args:
        name_or_path: A path to an existing weights file or a registered
            name (see `registered_weights`).
        cache_dir: Folder for downloaded weights; default
            `<ANYSMA_CACHE_DIR>/weights` (`~/.anysma/weights`).
        verbose: Show download progress.

    Returns:
        Path of the `.weights.h5` file, ready for `model.load_weights`.

    Raises:
        FileNotFoundError: `name_or_path` is a path but no file is there.
        anysma.datasets.DamagedFileError: The file is damaged or no weights
            file (a `ValueError` naming it and saying how to replace it).
        ValueError: Unknown name (the original's names explain how to train
            the weights), or a download with the wrong sha256 (deleted).
        OSError: The download failed.

    Example (not run by the test suite: it downloads the registered
    weights):

    >>> model.load_weights(get_weights("mnist"))  # doctest: +SKIP

    `"./mnist"` would be the file `mnist` in the current folder instead.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(
            "`name_or_path` must be a path or a registered name. "
            f"Received: name_or_path={name_or_path!r}"
        )
    if looks_like_path(name_or_path):
        path = os.path.expanduser(os.fspath(name_or_path))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No weights file at {path!r}.")
        return check_weights_file(path)
    name = name_or_path
    known = registered_weights()
    if name not in known:
        message = _no_weights_message(name, known)
        if os.path.isfile(name):
            # A bare name is never taken from the current folder: say how.
            message += (
                f" A file named {name!r} exists in the current folder; to load it, "
                f"pass it as a path: {os.path.join(os.curdir, name)!r}."
            )
        raise ValueError(message)
    entry = known[name]
    folder = os.path.abspath(
        os.path.expanduser(cache_dir) if cache_dir else weights_cache_dir()
    )
    destination = os.path.join(folder, name + WEIGHTS_SUFFIX)
    remedy = _weights_remedy(name, entry)
    if not (
        os.path.isfile(destination)
        and downloads.cached_file_sha256(destination) == entry["sha256"]
    ):
        # Missing, or a stale copy (e.g. the entry was updated): fetch it.
        downloads.download(entry["url"], destination, entry["sha256"], verbose=verbose)
    return check_weights_file(destination, remedy)


def _write_atomically(path, write):
    suffix = WEIGHTS_SUFFIX if path.endswith(WEIGHTS_SUFFIX) else ""
    return write_atomically(path, write, suffix=suffix)


def export_weights(model, path, name=None, url=None, experiment=None, description=""):
    """Save a model's weights for sharing and describe them for the registry.

    Writes `model.save_weights(path)` through a temporary file (so a failed
    save leaves nothing behind) and a `<path>.json` entry next to it, which
    `ANYSMA_WEIGHTS_REGISTRY` can point to.

    Args:
        model: A built Keras model.
        path: Destination file; must end in `.weights.h5`.
        name: Registry name; default: the file name without `.weights.h5`.
        url: Where the file will be published, if known.
        experiment: Name of the experiment whose model the weights fit.
        description: Free text.

    Returns:
        The entry dict: `name`, `file` (base name), `sha256`, `size`
        (bytes), `url`, `experiment`, `description`,
        `keras_version` and `backend`.

    Example (not run by the test suite: it needs a trained model and a
    place to publish the file):

    >>> entry = export_weights(model, "out/mnist.weights.h5")  # doctest: +SKIP
    >>> register_weights("mnist", url, entry["sha256"])  # doctest: +SKIP
    """
    import keras

    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path).endswith(
        WEIGHTS_SUFFIX
    ):
        raise ValueError(
            f"`path` must end in '{WEIGHTS_SUFFIX}' (Keras' weights format). "
            f"Received: path={path!r}"
        )
    if not hasattr(model, "save_weights"):
        raise TypeError(
            f"`model` must be a Keras model. Received: {type(model).__name__}"
        )
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    file_name = os.path.basename(path)
    if name is None:
        name = file_name[: -len(WEIGHTS_SUFFIX)]
    _check_name(name)
    if url is not None:
        _check_url(url, name)
    _write_atomically(path, lambda temporary: model.save_weights(temporary))
    entry = {
        "name": name,
        "file": file_name,
        "sha256": downloads.file_sha256(path),
        "size": os.path.getsize(path),
        "url": url,
        "experiment": experiment,
        "description": description,
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
    }

    def write_json(temporary):
        with open(temporary, "w", encoding="utf-8") as stream:
            json.dump(entry, stream, indent=2)
            stream.write("\n")

    _write_atomically(path + ".json", write_json)
    return entry
