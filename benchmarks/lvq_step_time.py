"""Training step time of the ready-made LVQ models on MNIST, per backend.

Times one epoch of `fit` (batch 128, Adam, the GLVQ loss) over 156 batches
of MNIST training images after a warm-up fit that compiles, for GLVQ, GMLVQ and
GTLVQ with 1 and 10 prototypes per class, each backend in its own process.
With several prototypes per class the nearest-prototype competition runs,
which is where a copy of the input per prototype used to cost most of the
step on PyTorch.

```bash
python benchmarks/lvq_step_time.py                     # all three backends
python benchmarks/lvq_step_time.py --backends torch --no_write
```

The table is printed and written to the `lvq_step_time` section of
`RESULTS.md` (`--no_write` to skip). MNIST is read with
`anysma.datasets.mnist` (`--data_dir`, `ANYSMA_DATA_DIR` or the cache).
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _report  # noqa: E402

BACKENDS = ("jax", "torch", "tensorflow")
MODELS = ("GLVQ", "GMLVQ", "GTLVQ")
PROTOTYPES_PER_CLASS = (1, 10)
# A whole number of batches: a smaller last batch would compile a second step
# inside the timed fit.
SAMPLES = 156 * 128
BATCH_SIZE = 128


def _worker(data_dir):
    import keras
    import numpy as np

    import anysma
    from anysma.datasets import mnist

    (images, labels), _ = mnist.load_data(data_dir=data_dir)
    x = images[:SAMPLES].reshape(SAMPLES, -1).astype("float32") / 255.0
    y = keras.utils.to_categorical(labels[:SAMPLES], 10)
    rows = []
    for name in MODELS:
        for per_class in PROTOTYPES_PER_CLASS:
            options = {"subspace_dim": 12} if name == "GTLVQ" else {}
            model = getattr(anysma.models, name)(
                num_classes=10,
                prototypes_per_class=per_class,
                input_dim=x.shape[1],
                **options,
            )
            model.compile(optimizer="adam", loss=anysma.losses.GlvqLoss())
            warm_up = 10 * BATCH_SIZE
            model.fit(x[:warm_up], y[:warm_up], batch_size=BATCH_SIZE, verbose=0)
            started = time.perf_counter()
            model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)
            seconds = time.perf_counter() - started
            rows.append(
                {
                    "backend": keras.backend.backend(),
                    "model": name,
                    "prototypes_per_class": per_class,
                    "ms_per_step": seconds / int(np.ceil(SAMPLES / BATCH_SIZE)) * 1e3,
                }
            )
    print(json.dumps(rows))


def _table(rows):
    return _report.markdown_table(
        ("backend", "model", "prototypes per class", "ms per step"),
        [
            (
                row["backend"],
                row["model"],
                row["prototypes_per_class"],
                f"{row['ms_per_step']:.2f}",
            )
            for row in rows
        ],
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=BACKENDS, choices=BACKENDS)
    parser.add_argument("--data_dir")
    parser.add_argument("--no_write", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.data_dir)
        return
    arguments = ["--data_dir", args.data_dir] if args.data_dir else []
    rows = _report.rows_per_backend(__file__, args.backends, arguments)
    table = _table(rows)
    print(table)
    if not args.no_write:
        description = (
            "Training step time of the ready-made LVQ models "
            f"(`python benchmarks/lvq_step_time.py`): one epoch over "
            f"{SAMPLES:,} MNIST images, batch {BATCH_SIZE}, Adam, after a "
            "warm-up fit that compiles; wall time per step."
        )
        _report.write_results_section("lvq_step_time", description, table)


if __name__ == "__main__":
    main()
