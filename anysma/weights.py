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
`"url"` but with `"file"` refers to that file next to the JSON file.
Several files may be listed, separated by `os.pathsep`; entries registered
in code take precedence.

Downloads go to `<ANYSMA_CACHE_DIR>/weights` (default `~/.anysma/weights`),
streamed into a temporary file and kept only if the sha256 matches.
"""

import json
import os
import pathlib
import tempfile

from anysma.datasets import _files

REGISTRY_ENV = "ANYSMA_WEIGHTS_REGISTRY"
WEIGHTS_SUFFIX = ".weights.h5"

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


def _check_name(name, where=""):
    if (
        not isinstance(name, str)
        or not name.strip()
        or any(separator in name for separator in "/\\")
    ):
        raise ValueError(
            f"`name` must be a non-empty string without slashes{where}. "
            f"Received: name={name!r}"
        )
    return name


def _check_url(url, name, where=""):
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(
            f"`url` of weights {name!r}{where} must be a URL such as "
            f"'https://…' or 'file:///…'. Received: url={url!r}"
        )
    return url


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
        "sha256": _files.check_sha256(sha256),
        "experiment": experiment,
        "description": description,
    }


def register_weights(
    name, url, sha256, experiment=None, description="", overwrite=False
):
    """Add pretrained weights to `REGISTRY` so `get_weights(name)` finds them.

    Args:
        name: Registry name, e.g. `"mnist"`.
        url: Where the `.weights.h5` file is published (`https://`,
            `http://` or `file://`).
        sha256: Hex sha256 of the file; downloads with another digest are
            rejected and deleted.
        experiment: Name of the experiment whose model the weights fit.
        description: Free text.
        overwrite: Replace an existing entry of the same name.

    Returns:
        The new registry entry (a dict).

    Example:

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
            url = pathlib.Path(folder, item["file"]).as_uri()
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
        f"`name_or_path` must be an existing file or the name of registered weights. "
        f"Received: name_or_path={name!r}. Registered weights: {listed}."
    )


def weights_cache_dir():
    """Return `<ANYSMA_CACHE_DIR or ~/.anysma>/weights`."""
    return _files.cache_dir("weights")


def get_weights(name_or_path, cache_dir=None, verbose=True):
    """Return the local path of pretrained weights, downloading them if needed.

    Args:
        name_or_path: A path to an existing weights file (returned as is) or
            a registered name (see `registered_weights`).
        cache_dir: Folder for downloaded weights; default
            `<ANYSMA_CACHE_DIR>/weights` (`~/.anysma/weights`).
        verbose: Show download progress.

    Returns:
        Path of the `.weights.h5` file, ready for `model.load_weights`.

    Raises:
        FileNotFoundError: `name_or_path` looks like a path but no file
            is there.
        ValueError: Unknown name (the original's names explain how to train
            the weights), or a download with the wrong sha256 (deleted).
        OSError: The download failed.

    Example:

    >>> model.load_weights(get_weights("mnist"))  # doctest: +SKIP
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(
            "`name_or_path` must be a path or a registered name. "
            f"Received: name_or_path={name_or_path!r}"
        )
    path = os.path.expanduser(os.fspath(name_or_path))
    if os.path.isfile(path):
        return path
    known = registered_weights()
    if path not in known:
        looks_like_path = os.sep in path or path.endswith((".h5", ".keras"))
        if looks_like_path:
            raise FileNotFoundError(
                f"No weights file at {path!r}, and it is no registered name."
            )
        raise ValueError(_no_weights_message(path, known))
    entry = known[path]
    folder = os.path.abspath(
        os.path.expanduser(cache_dir) if cache_dir else weights_cache_dir()
    )
    destination = os.path.join(folder, path + WEIGHTS_SUFFIX)
    if os.path.isfile(destination):
        if _files.file_sha256(destination) == entry["sha256"]:
            return destination
        # A stale copy (e.g. the entry was updated): fetch the file again.
    return _files.download(entry["url"], destination, entry["sha256"], verbose=verbose)


def _write_atomically(path, write):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    suffix = WEIGHTS_SUFFIX if path.endswith(WEIGHTS_SUFFIX) else ".part"
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=folder
    )
    os.close(descriptor)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


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

    Example:

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
        "sha256": _files.file_sha256(path),
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
