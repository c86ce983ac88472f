"""Certified robustness and the reject option of LVQ models on MNIST.

The protocol of Saralajew, Holdijk, Rees and Villmann (NeurIPS 2020): a
nearest prototype classifier on the 784 raw pixels in [0, 1], trained with
the GLVQ cost, and for each model at its threat model's `epsilon`

- CTE, the clean test error;
- URTE, the upper bound on the robust test error from the certificate
  (`1 - anysma.robustness.certified_accuracy`): no perturbation of norm
  `epsilon` can make more errors than this;
- LRTE, the lower bound on the robust test error from an attack (PGD in
  the `epsilon`-ball, the first run from the clean image, the others from
  random starts; a sample counts as broken if any run breaks it).

Models (`-m/--model`), with the published configurations:

- `glvq_linf`: GLVQ on the maximum norm, 128 prototypes per class,
  L-infinity threat model, `epsilon = 0.3`;
- `glvq_l2`: GLVQ on the squared Euclidean distance, 256 prototypes per
  class, L2 threat model, `epsilon = 1.58`;
- `gtlvq`: tangent-distance GLVQ, 10 prototypes per class with 12-d
  tangent subspaces, L2 threat model, `epsilon = 1.58`.

The prototypes start as per-class k-means centres of 10,000 training images
(and the tangents as their principal directions); Adam (lr 1e-3), batch
128. The published models trained for 1000 epochs (the default here);
`--epochs` and `--max_samples` give reduced budgets. Deviations: the
published GTLVQ trained with a hypothesis-margin (ReLU) loss, this one with
the GLVQ cost like the two GLVQ models; the published L2 attack was a
Carlini-Wagner-style search, this one is PGD; perturbations are not clipped
to the pixel range (the certificate does not assume it either, so LRTE and
URTE bound the same threat model). As in the other MNIST experiments, the
test set doubles as the validation set.

The run also writes the certified accuracy over a range of `epsilon`
(`certified_accuracy.png`) and the reject option's accuracy-coverage curve
(`accuracy_coverage.png`, confidence = relative similarity) with a table of
the accuracy at fixed coverages in `summary.json`.

Outputs in `<save_dir>/robustness_mnist_<model>/`: log.csv, best/final
weights, summary.json and the plots.
"""

import math
import os
import sys

import keras
import numpy as np

from anysma.experiments import common
from anysma.experiments.lvq_mnist import train_on_flat_mnist

NAME = "robustness_mnist"
DATASET = "mnist"
EXPECTED = (
    "GLVQ L-infinity, 128 prototypes/class: 3.7% clean error, 20.9% certified "
    "robust error (URTE) at epsilon 0.3 (authors' training log, epoch 1000)"
)
#: The models and their published configurations.
MODELS = {
    "glvq_linf": {"per_class": 128, "norm": math.inf, "epsilon": 0.3},
    "glvq_l2": {"per_class": 256, "norm": 2, "epsilon": 1.58},
    "gtlvq": {"per_class": 10, "norm": 2, "epsilon": 1.58, "subspace_dim": 12},
}
#: PGD restarts and steps per threat model (the published attack budget).
ATTACKS = {math.inf: (3, 200), 2: (10, 1000)}


def build_parser(prog=NAME):
    """The command-line flags (`--help` lists them)."""
    from anysma.experiments.common import _checked
    from anysma.utils.validation import check_int

    parser = common.build_parser(prog, __doc__, epochs=1000, batch_size=128, lr=1e-3)
    positive = _checked(int, check_int, minimum=1)
    parser.add_argument(
        "-m", "--model", choices=tuple(MODELS), default="glvq_linf", help="the model"
    )
    parser.add_argument(
        "--prototypes_per_class",
        type=positive,
        default=None,
        help="prototypes per class (default: the published number of the model)",
    )
    parser.add_argument(
        "--attack_restarts",
        type=positive,
        default=None,
        help="PGD runs per sample (default: 3 for L-infinity, 10 for L2)",
    )
    parser.add_argument(
        "--attack_steps",
        type=positive,
        default=None,
        help="PGD steps per run (default: 200 for L-infinity, 1000 for L2)",
    )
    parser.add_argument(
        "--attack_samples",
        type=positive,
        default=None,
        help="attack only this many test images (default: all)",
    )
    return parser


def build_model(name, per_class, lr):
    """The compiled model `name` with `per_class` prototypes per class."""
    from anysma import losses
    from anysma import models

    config = MODELS[name]
    arguments = {
        "input_dim": 784,
        "num_classes": 10,
        "prototypes_per_class": per_class,
        "name": name,
    }
    if name == "gtlvq":
        model = models.GTLVQ(**arguments, subspace_dim=config["subspace_dim"])
    else:
        order_p = math.inf if config["norm"] == math.inf else 2
        model = models.GLVQ(**arguments, order_p=order_p)
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=losses.GlvqLoss(),
        metrics=["accuracy"],
    )
    return model


def robust_errors(model, x, y, epsilon, norm, restarts, steps, seed):
    """`(CTE, URTE, LRTE)` on `x`: clean, certified and attacked errors.

    `CTE <= LRTE <= URTE` always: an attack cannot beat the certificate.
    """
    from anysma import robustness

    certified = robustness.certified_accuracy(model, x, y, epsilon, norm=norm)
    predictions = np.argmax(common.predict(model, x, 1000), axis=-1)
    broken = predictions != y
    clean_error = float(np.mean(broken))
    for run in range(restarts):
        # Only samples that are still classified correctly need attacking.
        alive = np.flatnonzero(~broken)
        if alive.size == 0:
            break
        result = robustness.attack(
            model,
            x[alive],
            y[alive],
            epsilon,
            norm=norm,
            steps=steps,
            random_start=run > 0,
            seed=seed + run,
            batch_size=1000,
        )
        broken[alive[result.success]] = True
    return clean_error, 1.0 - certified, float(np.mean(broken))


def run(args, data=None):
    """Train and evaluate; return the final metrics as a dict.

    Args:
        args: The parsed flags (`build_parser().parse_args(...)`).
        data: Your own data in place of the MNIST files, an
            `anysma.experiments.ExperimentData`: inputs `(n, 784)` in
            [0, 1], one-hot targets `(n, 10)`. The training data may be a
            stream; the test data must be arrays (the certificates, the
            attack and the reject curve run over all of it). `None` (the
            default) reads MNIST.
    """
    from anysma import robustness

    config = MODELS[args.model]
    norm = config["norm"]
    epsilon = config["epsilon"]
    per_class = args.prototypes_per_class or config["per_class"]
    default_restarts, default_steps = ATTACKS[norm]
    restarts = args.attack_restarts or default_restarts
    steps = args.attack_steps or default_steps

    model = build_model(args.model, per_class, args.lr)
    directory, started, _, (x_test, test_targets), metrics = train_on_flat_mnist(
        args, f"{NAME}_{args.model}", model, data=data, test_arrays=True
    )
    y_test = np.argmax(test_targets, axis=-1)
    attacked = common.subset((x_test, y_test), args.attack_samples, args.seed)
    clean_error, urte, lrte = robust_errors(
        model, *attacked, epsilon, norm, restarts, steps, args.seed
    )
    metrics.update(
        {
            "model": args.model,
            "prototypes_per_class": per_class,
            "threat_model": "Linf" if norm == math.inf else "L2",
            "epsilon": epsilon,
            # The three errors are on the same (attacked) test images.
            "robustness_samples": len(attacked[0]),
            "clean_test_error_cte": clean_error,
            "certified_robust_error_urte": urte,
            "attacked_robust_error_lrte": lrte,
            "attack": {"method": "PGD", "restarts": restarts, "steps": steps},
        }
    )
    epsilons = np.linspace(0.0, 2.0 * epsilon, 41)
    certified_curve = robustness.certified_accuracy(
        model, x_test, y_test, epsilons, norm=norm
    )
    metrics["certified_accuracy_curve"] = {
        "epsilon": epsilons.round(4).tolist(),
        "accuracy": certified_curve.round(4).tolist(),
    }
    curve, table = common.reject_table(model, x_test, y_test)
    metrics["accuracy_at_coverage"] = table
    print(
        f"{args.model}: CTE {clean_error:.2%}, URTE {urte:.2%}, LRTE {lrte:.2%} "
        f"at epsilon {epsilon} ({metrics['threat_model']})",
        flush=True,
    )

    plots = []
    if not args.no_plots:
        visualization = common.optional_visualization()
        if visualization is not None:
            label = f"{args.model} ({per_class} prototypes/class)"
            visualization.plot_certified_accuracy(
                epsilons,
                {label: certified_curve},
                norm=norm,
                attacked={label: (epsilon, 1.0 - lrte)},
                path=os.path.join(directory, "certified_accuracy.png"),
            )
            visualization.plot_accuracy_coverage(
                {label: curve},
                title="Reject option on the MNIST test set",
                path=os.path.join(directory, "accuracy_coverage.png"),
            )
            plots = ["certified_accuracy.png", "accuracy_coverage.png"]
    return common.finish(directory, NAME, args, started, metrics, plots)


def main(argv=None, prog=NAME):
    return common.main(sys.modules[__name__], argv, prog)
