"""Training step time of the ready-made LVQ models on MNIST, per backend.

Times one epoch of `fit` (batches of 32 and 128, Adam, the GLVQ loss) over
156 batches of MNIST training images after a warm-up fit that compiles, for
GLVQ, GMLVQ and GTLVQ with 1 and 10 prototypes per class, each backend in its
own process, twice: the ready-made model, whose `call` runs its layers' `call`
in a row, and the same layers as a plain functional model (the graph, with
`Layer.__call__` per layer).
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
BATCH_SIZES = (32, 128)
# A whole number of batches: a smaller last batch would compile a second step
# inside the timed fit.
STEPS = 156
PATHS = ("graph", "direct")


def _time_fit(model, x, y, batch_size):
    import anysma

    model.compile(optimizer="adam", loss=anysma.losses.GlvqLoss())
    warm_up = 10 * batch_size
    model.fit(x[:warm_up], y[:warm_up], batch_size=batch_size, verbose=0)
    started = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    return (time.perf_counter() - started) / STEPS * 1e3


def _worker(data_dir):
    import keras

    import anysma
    from anysma.datasets import mnist

    (images, labels), _ = mnist.load_data(data_dir=data_dir)
    samples = STEPS * max(BATCH_SIZES)
    x_all = images[:samples].reshape(samples, -1).astype("float32") / 255.0
    y_all = keras.utils.to_categorical(labels[:samples], 10)
    rows = []
    for name in MODELS:
        for per_class in PROTOTYPES_PER_CLASS:
            for batch_size in BATCH_SIZES:
                x = x_all[: STEPS * batch_size]
                y = y_all[: STEPS * batch_size]
                row = {
                    "backend": keras.backend.backend(),
                    "model": name,
                    "prototypes_per_class": per_class,
                    "batch_size": batch_size,
                }
                for path in PATHS:
                    options = {"subspace_dim": 12} if name == "GTLVQ" else {}
                    model = getattr(anysma.models, name)(
                        num_classes=10,
                        prototypes_per_class=per_class,
                        input_dim=x.shape[1],
                        **options,
                    )
                    if path == "graph":
                        # The same layers run as a plain functional model:
                        # `Layer.__call__` per layer instead of `call` in a row.
                        model = keras.Model(model.inputs[0], model.outputs[0])
                    row[path] = _time_fit(model, x, y, batch_size)
                rows.append(row)
    print(json.dumps(rows))


def _table(rows):
    return _report.markdown_table(
        (
            "backend",
            "model",
            "prototypes per class",
            "batch",
            "ms per step, graph",
            "ms per step, model",
            "speed-up",
        ),
        [
            (
                row["backend"],
                row["model"],
                row["prototypes_per_class"],
                row["batch_size"],
                f"{row['graph']:.2f}",
                f"{row['direct']:.2f}",
                f"{row['graph'] / row['direct']:.2f}x",
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
            f"(`python benchmarks/lvq_step_time.py`): one epoch of {STEPS} "
            "steps over MNIST images at each batch size, Adam, after a "
            "warm-up fit that compiles; wall time per step. 'graph' runs the "
            "model's layers as a plain functional model (`Layer.__call__` per "
            "layer, as every model did before); 'model' is the ready-made "
            "model, whose `call` runs the same layers' `call` in a row with "
            "the same variables and results."
        )
        _report.write_results_section("lvq_step_time", description, table)


if __name__ == "__main__":
    main()
