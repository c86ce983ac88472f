"""Side by side: the `anysma.sklearn` estimators against the peer libraries.

Fits GLVQ, GMLVQ, GRLVQ and RSLVQ of `anysma.sklearn` and of sklearn-lvq,
GLVQ and GMLVQ of sklvq, and the same four models of ProtoTorch on the
Tecator 5-fold CV (every peer in its own pinned virtual environment, see
`peers/setup_peers.py`), and prints the fit times, the CV accuracies and
the peers' pins as a table. The same as `python benchmarks/run.py --only
sklearn`; all of that command's options apply, e.g.

```bash
python benchmarks/compare_sklearn.py --backends torch
```
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run  # noqa: E402


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    return run.main(["--only", "sklearn", *argv])


if __name__ == "__main__":
    sys.exit(main())
