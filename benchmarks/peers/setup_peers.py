"""Create one virtual environment per peer LVQ library, with pinned versions.

Each peer only runs on a narrow band of NumPy/SciPy/scikit-learn/Lightning
releases (see the comments in `requirements-<peer>.txt`), so each one gets its
own environment under `benchmarks/.venvs/<peer>` (git-ignored). After a
successful install the environment's `pip freeze` is written to
`benchmarks/.venvs/<peer>/freeze.txt`; the benchmark runner records it in the
results. A failed install leaves `install.log` and no `freeze.txt`, and the
benchmarks report that peer as skipped.

Usage:

```bash
python benchmarks/peers/setup_peers.py            # all peers
python benchmarks/peers/setup_peers.py sklvq      # one peer
python benchmarks/peers/setup_peers.py --force    # rebuild
```
"""

import argparse
import os
import pathlib
import shutil
import subprocess
import sys

PEERS_DIR = pathlib.Path(__file__).resolve().parent
VENVS_DIR = PEERS_DIR.parent / ".venvs"
PEERS = ("sklearn_lvq", "sklvq", "prototorch")


def venv_python(peer):
    """Path of the Python interpreter of `peer`'s environment."""
    return VENVS_DIR / peer / "bin" / "python"


def requirements_file(peer):
    """Path of the pinned requirements of `peer`."""
    return PEERS_DIR / f"requirements-{peer}.txt"


def freeze_file(peer):
    """Path of the `pip freeze` record written after a successful setup."""
    return VENVS_DIR / peer / "freeze.txt"


def setup_peer(peer, force=False):
    """Create and populate the environment of `peer`.

    Returns:
        `(ok, message)`.
    """
    if peer not in PEERS:
        raise ValueError(f"`peer` must be one of {PEERS}; received {peer!r}.")
    target = VENVS_DIR / peer
    if freeze_file(peer).exists() and not force:
        return True, f"{peer}: already set up ({target})"
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    log_path = target.parent / f"{peer}-install.log"
    with open(log_path, "w") as log:
        steps = [
            [sys.executable, "-m", "venv", str(target)],
            [str(venv_python(peer)), "-m", "pip", "install", "-q", "--upgrade", "pip"],
            [
                str(venv_python(peer)),
                "-m",
                "pip",
                "install",
                "-r",
                str(requirements_file(peer)),
            ],
        ]
        for step in steps:
            log.write("$ " + " ".join(step) + "\n")
            log.flush()
            result = subprocess.run(step, stdout=log, stderr=subprocess.STDOUT)
            if result.returncode != 0:
                return False, f"{peer}: `{' '.join(step[-3:])}` failed, see {log_path}"
    freeze = subprocess.run(
        [str(venv_python(peer)), "-m", "pip", "freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tmp = freeze_file(peer).with_suffix(".tmp")
    tmp.write_text(freeze)
    os.replace(tmp, freeze_file(peer))
    return True, f"{peer}: ready ({target})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "peers", nargs="*", help=f"any of {', '.join(PEERS)} (default: all)"
    )
    parser.add_argument("--force", action="store_true", help="rebuild existing venvs")
    args = parser.parse_args(argv)
    failures = 0
    for peer in args.peers or PEERS:
        ok, message = setup_peer(peer, force=args.force)
        print(message, flush=True)
        failures += not ok
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
