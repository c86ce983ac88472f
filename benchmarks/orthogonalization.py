"""Speed of the `Orthogonalization` constraint: Gram-matrix eigh vs SVD.

`anysma.ops.orthogonalization` (the constraint of every tangent distance,
applied after each optimizer step) computes the polar factor `W (W^T W)^-1/2`
from an eigendecomposition of the small `r x r` Gram matrix, and falls back
to the SVD of `W` only for ill-conditioned stacks. This script times it
against the SVD path it replaced, on the shapes the models use, compiled the
way Keras runs a training step (`jax.jit`, `tf.function`, eager PyTorch),
one process per backend, and checks that both give the same matrices.

```bash
python benchmarks/orthogonalization.py            # all three backends
python benchmarks/orthogonalization.py --backends jax
```

The table is printed and written to the `orthogonalization` section of
`RESULTS.md` (`--no_write` to skip).
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _report  # noqa: E402

BACKENDS = ("jax", "torch", "tensorflow")
# (what, stack shape) of the tangent bases the models constrain.
SHAPES = (
    ("GTLVQ on MNIST, 10 prototypes x 12 tangents", (10, 784, 12)),
    ("LVQ-capsule network Caps1", (64, 64, 16)),
    ("LVQ-capsule network Caps3", (10, 128, 16)),
)


def _worker():
    """Time both algorithms on this process' backend; print JSON rows."""
    import keras
    import numpy as np
    from distance_kernels import _compiled
    from distance_kernels import _seconds_per_call

    from anysma.ops import linalg

    backend = keras.backend.backend()
    rows = []
    for what, shape in SHAPES:
        rng = np.random.default_rng(0)
        # A basis after an optimizer step: orthonormal plus a small update.
        basis = np.linalg.qr(rng.standard_normal(shape))[0]
        matrices = (basis + 0.01 * rng.standard_normal(shape)).astype("float32")
        tensor = keras.ops.convert_to_tensor(matrices)
        eigh = _compiled(linalg.orthogonalization, backend)
        svd = _compiled(linalg._polar_from_svd, backend)
        difference = float(
            np.max(
                np.abs(
                    keras.ops.convert_to_numpy(eigh(tensor))
                    - keras.ops.convert_to_numpy(svd(tensor))
                )
            )
        )
        seconds = {
            name: _seconds_per_call(fn, (tensor,), backend, 0.5, 10)
            for name, fn in (("svd", svd), ("eigh", eigh))
        }
        rows.append(
            {
                "backend": backend,
                "what": what,
                "shape": list(shape),
                "svd_ms": seconds["svd"] * 1e3,
                "eigh_ms": seconds["eigh"] * 1e3,
                "max_difference": difference,
            }
        )
    print(json.dumps(rows))


def _table(rows):
    return _report.markdown_table(
        (
            "backend",
            "matrices",
            "shape",
            "SVD (ms)",
            "Gram eigh (ms)",
            "speed-up",
            "max difference",
        ),
        [
            (
                row["backend"],
                row["what"],
                tuple(row["shape"]),
                f"{row['svd_ms']:.3f}",
                f"{row['eigh_ms']:.3f}",
                f"{row['svd_ms'] / row['eigh_ms']:.1f}x",
                f"{row['max_difference']:.1e}",
            )
            for row in rows
        ],
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=BACKENDS, choices=BACKENDS)
    parser.add_argument("--no_write", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker()
        return
    rows = _report.rows_per_backend(__file__, args.backends)
    table = _table(rows)
    print(table)
    if not args.no_write:
        description = (
            "The polar factor of the tangent bases, the constraint applied "
            "after every optimizer step of a tangent-distance model "
            "(`python benchmarks/orthogonalization.py`): the SVD of the "
            "bases against the eigendecomposition of their small Gram "
            "matrix, compiled as in a training step, median per call, on "
            "bases one small update away from orthonormal."
        )
        _report.write_results_section("orthogonalization", description, table)


if __name__ == "__main__":
    main()
