"""Speed of the robustness certificates against a plain `predict`.

`anysma.robustness.certified_radius` needs the distances to all prototypes
(one forward pass, as `predict`) plus a few reductions and the models'
Lipschitz constants. This script times both on the 10,000 MNIST test images
for GLVQ, GMLVQ and GTLVQ (the model sizes of the published certification
protocol: 10 prototypes per class; GTLVQ with 12-dimensional tangent
subspaces) on every backend, each backend in its own process, and reports
the ratio (target: at most 2x the time of `predict`).

```bash
python benchmarks/certification_speed.py            # all three backends
python benchmarks/certification_speed.py --backends jax --repeats 3
```

The weights come from k-means pre-training on 6,000 training images (the
timings do not depend on how well the model is trained). Each timing is the
median of `--repeats` runs after one warm-up call (which compiles).
Results go to `certification_speed.json` in `--output` (by default
`benchmarks/`) and, for the default output, to a section of `RESULTS.md`.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _report  # noqa: E402

BACKENDS = ("jax", "torch", "tensorflow")
MODELS = ("GLVQ", "GMLVQ", "GTLVQ")
PROTOTYPES_PER_CLASS = 10
SUBSPACE_DIM = 12
TARGET_RATIO = 2.0
SECTION_START = (
    "<!-- certification_speed: written by benchmarks/certification_speed.py -->"
)
SECTION_END = "<!-- /certification_speed -->"


def _mnist(data_dir):
    from anysma.datasets import mnist

    (x_train, y_train), (x_test, _) = mnist.load_data(data_dir=data_dir)

    def flat(images):
        return images.reshape(len(images), -1).astype("float32") / 255.0

    return flat(x_train[:6000]), y_train[:6000], flat(x_test)


def _build(name, x_train, y_train):
    from anysma import models

    options = {"prototypes_per_class": PROTOTYPES_PER_CLASS}
    if name == "GTLVQ":
        options["subspace_dim"] = SUBSPACE_DIM
    model = getattr(models, name)(input_dim=x_train.shape[1], num_classes=10, **options)
    model.pre_training(x_train, y_train, random_state=0, n_init=1)
    return model


def _median_seconds(function, repeats):
    function()  # warm-up: compilation
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def worker(args):
    """Time every model on the active backend; return a list of rows."""
    import keras

    from anysma import robustness

    x_train, y_train, x_test = _mnist(args.data_dir)
    rows = []
    for name in MODELS:
        model = _build(name, x_train, y_train)
        predict = _median_seconds(
            lambda model=model: model.predict(x_test, batch_size=1000, verbose=0),
            args.repeats,
        )
        row = {
            "backend": keras.backend.backend(),
            "model": name,
            "samples": len(x_test),
            "predict_seconds": round(predict, 4),
        }
        for norm in (2, np.inf):
            seconds = _median_seconds(
                lambda model=model, norm=norm: robustness.certified_radius(
                    model, x_test, norm=norm, batch_size=1000
                ),
                args.repeats,
            )
            key = "l2" if norm == 2 else "linf"
            row[f"certify_{key}_seconds"] = round(seconds, 4)
            row[f"ratio_{key}"] = round(seconds / predict, 2)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def table(rows):
    lines = [
        "| backend | model | predict (s) | certified_radius L2 (s) | ratio | "
        "certified_radius L-inf (s) | ratio | target <= 2x |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        met = max(row["ratio_l2"], row["ratio_linf"]) <= TARGET_RATIO
        lines.append(
            f"| {row['backend']} | {row['model']} | {row['predict_seconds']:.3f} | "
            f"{row['certify_l2_seconds']:.3f} | {row['ratio_l2']:.2f} | "
            f"{row['certify_linf_seconds']:.3f} | {row['ratio_linf']:.2f} | "
            f"{'met' if met else 'missed'} |"
        )
    return "\n".join(lines)


def markdown_section(rows):
    return "\n".join(
        [
            SECTION_START,
            "## certification_speed",
            "",
            "`anysma.robustness.certified_radius` against `predict` on the "
            "10,000 MNIST test images (`python benchmarks/certification_speed"
            ".py`; 10 prototypes per class, GTLVQ with 12 tangents; median "
            "after a warm-up call, batch 1,000).",
            "",
            table(rows),
            "",
            SECTION_END,
            "",
        ]
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=BACKENDS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data_dir")
    parser.add_argument("--output", default=HERE)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1. Received: {args.repeats}")
    if args.worker:
        print(json.dumps(worker(args)), flush=True)
        return 0
    arguments = [f"--repeats={args.repeats}"]
    if args.data_dir:
        arguments.append(f"--data_dir={args.data_dir}")
    rows = _report.rows_per_backend(__file__, args.backends, arguments)
    _report.write_atomically(
        os.path.join(args.output, "certification_speed.json"),
        json.dumps(rows, indent=1) + "\n",
    )
    print(table(rows))
    if os.path.abspath(args.output) == HERE:
        _report.replace_section(
            os.path.join(HERE, "RESULTS.md"),
            SECTION_START,
            SECTION_END,
            markdown_section(rows),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
