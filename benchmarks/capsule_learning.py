"""Learning trajectories of the capsule networks on real MNIST.

Trains each capsule model of `anysma.models` and a reference (the trunk of
the LVQ-capsule network with a dense softmax layer on its 14 x 14 x 64
signals)
on the same MNIST images in the same order, and records the
**inference-mode** accuracy on a fixed validation set every few steps, so a
slow start or a collapse of the moving statistics shows up as it happens.

```bash
python benchmarks/capsule_learning.py --case a   # 15,000 images, 5 models
python benchmarks/capsule_learning.py --case b   # 60,000 images, LVQ-CN + reference
python benchmarks/capsule_learning.py --models reference --samples 2560
```

MNIST is read with `anysma.datasets.mnist` (`--data_dir`, `ANYSMA_DATA_DIR`
or the cache). Each model trains in its own process with the backend given
by `--backend` (JAX by default; run the script once per backend with
`--models` to mix them: the results are merged).
Results are written after every model to `capsule_learning.json` in
`--output` (by default `benchmarks/`; an earlier file is never overwritten:
new results are merged into it per case and model), with a plot
`capsule_learning_<case>.png`, and the table is printed.

Protocol: batch 128, Adam, no augmentation, no decoder loss for the
LVQ-capsule network and the reference; CapsNet (margin loss) and CapsNetLVQ
(generalized KL divergence, learning rate 5e-3 as its experiment) train with
their decoders and the reconstruction weight 0.392, as in the paper.
`lvq_capsule_network_2018` is the LVQ-capsule network with the original's
batch normalization (Keras' moving statistics, momentum 0.99). The
validation set is a fixed random subset of the MNIST test set (`--val`).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _report  # noqa: E402

MODELS = ("capsnet", "capsnet_lvq", "lvq_capsule_network", "reference")
ORIGINAL = "lvq_capsule_network_2018"
CASES = {
    "a": {"samples": 15000, "models": MODELS + (ORIGINAL,)},
    "b": {"samples": 60000, "models": ("lvq_capsule_network", "reference")},
}
LABELS = {
    "capsnet": "CapsNet (dynamic routing)",
    "capsnet_lvq": "CapsNetLVQ",
    "lvq_capsule_network": "LVQCapsuleNetwork",
    "lvq_capsule_network_2018": "LVQCapsuleNetwork, 2018 batch norm",
    "reference": "reference: LVQ-CN trunk + dense softmax",
}
BATCH_SIZE = 128
NUM_CLASSES = 10


def _data(data_dir, samples, val, seed):
    from anysma.datasets import mnist

    (x_train, y_train), (x_test, y_test) = mnist.load_data(data_dir=data_dir)
    rng = np.random.default_rng(seed)
    train = rng.permutation(len(x_train))[:samples]
    test = np.sort(rng.choice(len(x_test), val, replace=False))

    def scale(images):
        return images.astype("float32")[..., None] / 255.0

    return (
        (scale(x_train[train]), y_train[train].astype("int64")),
        (scale(x_test[test]), y_test[test].astype("int64")),
    )


def build(name):
    """`(model, to_inputs, to_targets, probabilities)` for one benchmark model."""
    import keras

    from anysma import losses
    from anysma import models

    def plain_inputs(images, onehot):
        return images

    def plain_targets(images, onehot):
        return onehot

    def plain_probabilities(model, images):
        return model.predict(images, batch_size=500, verbose=0)

    if name in ("capsnet", "capsnet_lvq"):
        if name == "capsnet":
            model, loss, lr = models.CapsNet(), losses.MarginLoss(), 1e-3
        else:
            model = models.CapsNetLVQ()
            loss, lr = losses.GeneralizedKullbackLeiblerDivergence(), 5e-3
        model.compile(
            optimizer=keras.optimizers.Adam(lr),
            loss={"probabilities": loss, "reconstruction": "mse"},
            loss_weights={"probabilities": 1.0, "reconstruction": 0.392},
            metrics={"probabilities": ["accuracy"]},
        )

        def probabilities(model, images):
            outputs = model.predict(
                {"images": images, "labels": None}, batch_size=500, verbose=0
            )
            return outputs["probabilities"]

        return (
            model,
            lambda images, onehot: {"images": images, "labels": onehot},
            lambda images, onehot: {
                "probabilities": onehot,
                "reconstruction": images,
            },
            probabilities,
        )
    if name.startswith("lvq_capsule_network"):
        options = {}
        if name == ORIGINAL:
            options = {"batch_norm_momentum": 0.99, "batch_norm_debiasing": False}
        model = models.LVQCapsuleNetwork(**options)
        loss = losses.GeneralizedKullbackLeiblerDivergence()
    elif name == "reference":
        network = models.LVQCapsuleNetwork()
        signals = network.get_layer(network.SPLIT_LAYER).output[0]
        flat = keras.layers.Flatten()(signals)
        outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax")(flat)
        model = keras.Model(network.input, outputs, name="reference")
        loss = "categorical_crossentropy"
    else:
        raise ValueError(f"Unknown model {name!r}; choose from {MODELS}")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=["accuracy"]
    )
    return model, plain_inputs, plain_targets, plain_probabilities


def train(name, args):
    """Train `name` once; return its trajectory as a dict."""
    import keras

    keras.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_val, y_val) = _data(
        args.data_dir, args.samples, args.val, args.seed
    )
    onehot = keras.utils.to_categorical(y_train, NUM_CLASSES)
    model, to_inputs, to_targets, probabilities = build(name)
    steps = len(x_train) // BATCH_SIZE
    trajectory = []
    seconds = 0.0
    for first in range(0, steps, args.every):
        last = min(steps, first + args.every)
        rows = slice(first * BATCH_SIZE, last * BATCH_SIZE)
        started = time.perf_counter()
        history = model.fit(
            to_inputs(x_train[rows], onehot[rows]),
            to_targets(x_train[rows], onehot[rows]),
            batch_size=BATCH_SIZE,
            epochs=1,
            shuffle=False,
            verbose=0,
        )
        seconds += time.perf_counter() - started
        predicted = np.argmax(probabilities(model, x_val), axis=-1)
        accuracy_key = next(k for k in history.history if k.endswith("accuracy"))
        trajectory.append(
            {
                "step": last,
                "train_accuracy": round(float(history.history[accuracy_key][-1]), 4),
                "validation_accuracy": round(float(np.mean(predicted == y_val)), 4),
                "seconds": round(seconds, 1),
            }
        )
        print(name, json.dumps(trajectory[-1]), file=sys.stderr, flush=True)
    return {
        "model": name,
        "backend": keras.backend.backend(),
        "samples": len(x_train),
        "validation_samples": len(x_val),
        "steps": steps,
        "parameters": int(model.count_params()),
        "seconds": round(seconds, 1),
        "final_validation_accuracy": trajectory[-1]["validation_accuracy"],
        "trajectory": trajectory,
    }


def _write_json(path, data):
    _report.write_atomically(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def plot(case, results, path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axis = pyplot.subplots(figsize=(7, 4.2))
    for name, result in results.items():
        steps = [0] + [point["step"] for point in result["trajectory"]]
        accuracy = [0.1] + [
            point["validation_accuracy"] for point in result["trajectory"]
        ]
        axis.plot(
            steps, accuracy, marker=".", label=f"{LABELS[name]} ({result['backend']})"
        )
    axis.set_xlabel(f"training step (batch {BATCH_SIZE})")
    axis.set_ylabel("validation accuracy, inference mode")
    axis.set_ylim(0, 1)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right", fontsize=8)
    axis.set_title(f"MNIST, one epoch over {result['samples']:,} images (case {case})")
    figure.tight_layout()
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".png")
    os.close(handle)
    figure.savefig(temporary, dpi=110)
    os.replace(temporary, path)


def table(results):
    lines = [
        "| model | backend | parameters | steps | s per step "
        "| inference-mode validation accuracy at 1/8, 1/4, 1/2, 1 epoch |",
        "|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        trajectory = result["trajectory"]
        marks = []
        for fraction in (8, 4, 2, 1):
            target = result["steps"] / fraction
            point = min(trajectory, key=lambda p: abs(p["step"] - target))
            marks.append(f"{point['validation_accuracy']:.3f} (step {point['step']})")
        lines.append(
            f"| {LABELS[name]} | {result['backend']} | {result['parameters']:,} | "
            f"{result['steps']} | {result['seconds'] / result['steps']:.2f} | "
            + ", ".join(marks)
            + " |"
        )
    return "\n".join(lines)


#: Chance level plus a margin: "at chance" in the targets below.
CHANCE = 0.2
SECTION_START = "<!-- capsule_learning: written by benchmarks/capsule_learning.py -->"
SECTION_END = "<!-- /capsule_learning -->"


def targets(case, results):
    """The issue's targets as `(description, measured, met)` rows."""
    rows = []
    network = results.get("lvq_capsule_network")
    if network is None:
        return rows
    final = network["final_validation_accuracy"]
    if case == "a" and "capsnet" in results:
        capsnet = results["capsnet"]["final_validation_accuracy"]
        rows.append(
            (
                "LVQ-CN within 2 points of CapsNet at the end",
                f"{final:.3f} vs {capsnet:.3f}",
                final >= capsnet - 0.02,
            )
        )
    if case == "a":
        late = [
            point["validation_accuracy"]
            for point in network["trajectory"]
            if point["step"] >= network["steps"] / 8
        ]
        rows.append(
            (
                f"LVQ-CN never at chance (<= {CHANCE}) after 1/8 epoch",
                f"minimum {min(late):.3f}",
                min(late) > CHANCE,
            )
        )
    if case == "b":
        rows.append(("LVQ-CN >= 0.98 after one epoch", f"{final:.3f}", final >= 0.98))
    return rows


def markdown_section(directory=HERE):
    """The `RESULTS.md` section of the stored trajectories ('' if none)."""
    path = os.path.join(directory, "capsule_learning.json")
    if not os.path.exists(path):
        return ""
    with open(path) as stream:
        stored = json.load(stream)
    out = [
        SECTION_START,
        "## capsule_learning",
        "",
        "Inference-mode MNIST validation accuracy while training one epoch "
        "(`python benchmarks/capsule_learning.py --case a|b`; protocol in "
        "the script's docstring). Batch 128, Adam; validation on a fixed "
        "random 2,000 of the MNIST test images. 's per step' is the wall time "
        "of the training calls only, taken while other runs shared the "
        "cores: use the `capsules` section for speed.",
    ]
    for case in sorted(stored):
        results = stored[case]
        some = next(iter(results.values()))
        out += [
            "",
            f"### Case {case}: {some['samples']:,} training images, one epoch",
            "",
            table(results),
            "",
            f"![trajectories](capsule_learning_{case}.png)",
        ]
        rows = targets(case, results)
        if rows:
            out += ["", "| target | measured | status |", "|---|---|---|"]
            out += [
                f"| {text} | {measured} | {'met' if met else 'missed'} |"
                for text, measured, met in rows
            ]
    out += ["", SECTION_END, ""]
    return "\n".join(out)


def update_results_md(path, section):
    """Replace (or append) the capsule_learning section of `path`."""
    _report.replace_section(path, SECTION_START, SECTION_END, section)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=sorted(CASES), default="a")
    parser.add_argument("--models", nargs="+", choices=MODELS + (ORIGINAL,))
    parser.add_argument(
        "--samples", type=int, help="training images (default: the case's)"
    )
    parser.add_argument("--val", type=int, default=2000, help="validation images")
    parser.add_argument(
        "--every", type=int, default=8, help="steps between evaluations"
    )
    parser.add_argument(
        "--backend", default="jax", choices=("jax", "torch", "tensorflow")
    )
    parser.add_argument("--data_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=HERE)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.samples = args.samples or CASES[args.case]["samples"]
    if args.worker:
        print(json.dumps(train(args.worker, args)), flush=True)
        return 0
    path = os.path.join(args.output, "capsule_learning.json")
    stored = {}
    if os.path.exists(path):
        with open(path) as stream:
            stored = json.load(stream)
    results = stored.setdefault(args.case, {})
    for name in args.models or CASES[args.case]["models"]:
        command = [sys.executable, __file__, "--worker", name]
        command += [f"--case={args.case}", f"--samples={args.samples}"]
        command += [f"--val={args.val}", f"--every={args.every}"]
        command += [f"--seed={args.seed}"]
        if args.data_dir:
            command += [f"--data_dir={args.data_dir}"]
        environment = dict(os.environ, KERAS_BACKEND=args.backend)
        output = subprocess.run(
            command, env=environment, check=True, stdout=subprocess.PIPE, text=True
        ).stdout
        results[name] = json.loads(output.strip().splitlines()[-1])
        _write_json(path, stored)
        plot(
            args.case,
            results,
            os.path.join(args.output, f"capsule_learning_{args.case}.png"),
        )
    print(table(results))
    if os.path.abspath(args.output) == HERE:
        update_results_md(os.path.join(HERE, "RESULTS.md"), markdown_section())
    return 0


if __name__ == "__main__":
    sys.exit(main())
