"""Writing files so that a crash never leaves a half-written one.

Every file anysma writes for a user (summaries, weights, plots, backups)
goes through `write_atomically`: the content is written to a hidden
temporary file in the target's folder and moved into place with
`os.replace`, which is atomic on POSIX and Windows. A reader therefore sees
either the old file or the complete new one.
"""

import contextlib
import json
import os
import secrets


def write_atomically(path, write, suffix=""):
    """Call `write(temporary_path)`, then move the result to `path`.

    Args:
        path: The final file.
        write: A function that writes the complete file to the path it gets
            (e.g. `model.save_weights`).
        suffix: Ending the temporary name must keep for `write` to accept
            it (e.g. `".weights.h5"` for Keras).

    Returns:
        `path`.

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "note.txt")
    >>> def write(temporary):
    ...     with open(temporary, "w") as stream:
    ...         _ = stream.write("done")
    >>> os.path.basename(write_atomically(path, write))
    'note.txt'
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(
        directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.partial{suffix}"
    )
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise
    return path


def write_json_atomically(path, data):
    """Write `data` as indented, key-sorted JSON to `path`, atomically.

    Example:

    >>> import json, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "summary.json")
    >>> _ = write_json_atomically(path, {"accuracy": 0.9})
    >>> with open(path) as stream:
    ...     json.load(stream)
    {'accuracy': 0.9}
    """

    def write(temporary):
        with open(temporary, "w") as stream:
            json.dump(data, stream, indent=2, sort_keys=True)
            stream.write("\n")

    return write_atomically(path, write)
