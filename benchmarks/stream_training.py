"""GLVQ trained on a stream of generated data larger than memory.

A `keras.utils.PyDataset` generates every batch of 784-dimensional samples
(10 Gaussian classes) when Keras asks for it, so no data set is ever held in
memory: 10 million samples would take 31 GB as float32. GLVQ (one prototype
per class) is pre-trained over the whole stream (`model.pre_training(stream)`:
k-means per class with `MiniBatchKMeans.partial_fit`) and then trains one
epoch over it with `fit`, each size in its own process; the table reports
the times, the throughput of `fit` and the peak resident memory of the
process. The memory stays flat as the stream grows.

```bash
python benchmarks/stream_training.py                          # 1 M and 10 M
python benchmarks/stream_training.py --sizes 100000 --no_write
```

The table is printed and written to the `stream_training` section of
`RESULTS.md` (`--no_write` to skip). The backend is `KERAS_BACKEND` (JAX by
default).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _report  # noqa: E402

SIZES = (1_000_000, 10_000_000)
DIM = 784
CLASSES = 10
BATCH_SIZE = 1024


def _stream_class():
    import keras
    import numpy as np

    class GeneratedStream(keras.utils.PyDataset):
        """Batches of Gaussian classes, made on demand from their index."""

        def __init__(self, num_samples, seed, **kwargs):
            super().__init__(**kwargs)
            self.num_samples = num_samples
            self.seed = seed
            centers = np.random.default_rng(0).normal(size=(CLASSES, DIM))
            self.centers = centers.astype("float32") * 0.1

        def __len__(self):
            return -(-self.num_samples // BATCH_SIZE)

        def __getitem__(self, index):
            size = min(BATCH_SIZE, self.num_samples - index * BATCH_SIZE)
            rng = np.random.default_rng((self.seed, index))
            labels = rng.integers(0, CLASSES, size)
            noise = rng.standard_normal((size, DIM), dtype="float32")
            features = self.centers[labels] + noise
            return features, np.eye(CLASSES, dtype="float32")[labels]

    return GeneratedStream


def _worker(size):
    import keras

    import anysma

    stream = _stream_class()(size, seed=1)
    held_out = _stream_class()(20 * BATCH_SIZE, seed=2)
    model = anysma.models.GLVQ(input_dim=DIM, num_classes=CLASSES)
    started = time.perf_counter()
    model.pre_training(stream, random_state=0)
    pre_training_seconds = time.perf_counter() - started
    pre_training_peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=anysma.losses.GlvqLoss(),
        metrics=["accuracy"],
    )
    started = time.perf_counter()
    model.fit(stream, epochs=1, verbose=0)
    seconds = time.perf_counter() - started
    accuracy = model.evaluate(held_out, verbose=0, return_dict=True)["accuracy"]
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            [
                {
                    "backend": keras.backend.backend(),
                    "samples": size,
                    "pre_training_seconds": pre_training_seconds,
                    "pre_training_peak_rss_mib": pre_training_peak_kib / 1024,
                    "seconds": seconds,
                    "samples_per_second": size / seconds,
                    "peak_rss_mib": peak_kib / 1024,
                    "accuracy": accuracy,
                }
            ]
        )
    )


def _table(rows):
    return _report.markdown_table(
        (
            "backend",
            "samples",
            "data as float32 (GB)",
            "pre-training (s)",
            "peak memory after pre-training (MiB)",
            "fit (s)",
            "samples per second",
            "peak memory (MiB)",
            "held-out accuracy",
        ),
        [
            (
                row["backend"],
                f"{row['samples']:,}",
                f"{row['samples'] * DIM * 4 / 1e9:.1f}",
                f"{row['pre_training_seconds']:.0f}",
                f"{row['pre_training_peak_rss_mib']:.0f}",
                f"{row['seconds']:.0f}",
                f"{row['samples_per_second']:,.0f}",
                f"{row['peak_rss_mib']:.0f}",
                f"{row['accuracy']:.4f}",
            )
            for row in rows
        ],
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=SIZES)
    parser.add_argument("--no_write", action="store_true")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker)
        return
    rows = []
    for size in args.sizes:
        output = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--worker", str(size)],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
        rows += json.loads(output.strip().splitlines()[-1])
    table = _table(rows)
    print(table)
    if not args.no_write:
        info = _report.machine_info()
        description = (
            "GLVQ on a stream of generated data (`python "
            "benchmarks/stream_training.py`): a `keras.utils.PyDataset` makes "
            f"every batch of {BATCH_SIZE} samples ({DIM} dimensions, "
            f"{CLASSES} Gaussian classes) on demand; `pre_training` over the "
            "whole stream (k-means per class with `MiniBatchKMeans.partial_fit`, "
            "one prototype per class), then one epoch of `fit`, Adam; each size "
            "in its own process; peak memory is the process's peak resident "
            f"set. Machine: {info['cpu']}, "
            f"{info['cores']} cores."
        )
        _report.write_results_section("stream_training", description, table)


if __name__ == "__main__":
    main()
