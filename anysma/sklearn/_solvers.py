"""The optimizers of the estimators: full-batch L-BFGS and mini-batch SGD.

Both minimize a program objective (see `LVQProgram.objective`) over the
list of parameter values:

- `lbfgs`: `scipy.optimize.minimize(method="L-BFGS-B")` on the flattened
  parameters with exact gradients, on the whole (weighted) training set.
  Fast and accurate on small and medium data;
- `stochastic`: a Keras optimizer (`"adam"` or `"sgd"`) on shuffled
  mini-batches, for large data and for `partial_fit`.
"""

import keras
import numpy as np
from keras import ops
from scipy import optimize

from anysma.utils import autodiff as _autodiff

SOLVERS = ("lbfgs", "adam", "sgd")

# The stochastic solvers stop when the epoch loss has not improved by more
# than `tol` for this many epochs (as scikit-learn's MLPClassifier does).
N_ITER_NO_CHANGE = 10


def _progress_bar(target, verbose):
    return keras.utils.Progbar(
        target, verbose=1 if verbose else 0, stateful_metrics=["loss"]
    )


def lbfgs(evaluate, values, max_iter, tol, verbose=0):
    """Minimize a loss on the full batch with L-BFGS-B.

    Args:
        evaluate: `values -> (value, gradients)` on the whole training set,
            with NumPy inputs and outputs.
        values: Initial parameter values, a list of float32 arrays.
        max_iter: The maximal number of L-BFGS iterations.
        tol: Stop when an iteration decreases the loss by less than
            `tol * max(|loss|, 1)` (scipy's `ftol`).
        verbose: Show a Keras progress bar.

    Returns:
        A tuple `(values, n_iter, loss_curve, converged)`; `converged` is
        False when `max_iter` iterations were used up.
    """
    shapes = [value.shape for value in values]
    splits = np.cumsum([value.size for value in values])[:-1]

    def unflatten(flat):
        return [
            part.reshape(shape).astype("float32")
            for part, shape in zip(np.split(flat, splits), shapes)
        ]

    def loss_and_gradient(flat):
        value, gradients = evaluate(unflatten(flat))
        return value, np.concatenate([np.ravel(g) for g in gradients])

    loss_curve = []
    progress = _progress_bar(max_iter, verbose)

    def record(intermediate_result):
        loss_curve.append(float(intermediate_result.fun))
        progress.update(len(loss_curve), values=[("loss", loss_curve[-1])])

    start = np.concatenate([np.ravel(value) for value in values]).astype("float64")
    result = optimize.minimize(
        loss_and_gradient,
        start,
        jac=True,
        method="L-BFGS-B",
        callback=record,
        # Only the loss decrease decides: the gradients of a saturated
        # (sigmoid) GLVQ cost can be tiny long before the optimum.
        options={"maxiter": max_iter, "ftol": tol, "gtol": 0.0},
    )
    if not loss_curve:
        loss_curve.append(float(result.fun))
    converged = not (result.status == 1 and result.nit >= max_iter)
    return unflatten(result.x), int(result.nit), loss_curve, converged


def _make_optimizer(solver, learning_rate):
    if solver == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    return keras.optimizers.SGD(learning_rate=learning_rate)


def stochastic(
    evaluate,
    values,
    constraints,
    x,
    y,
    w,
    solver,
    learning_rate,
    batch_size,
    epochs,
    tol,
    rng,
    optimizer_state=None,
    verbose=0,
):
    """Minimize a loss on shuffled mini-batches with a Keras optimizer.

    The constraints of the parameters are applied after every step (by the
    optimizer, as in `model.fit`).

    Args:
        evaluate: `(values, x, y, w) -> (value, gradients)` on a batch, with
            NumPy inputs and outputs.
        values: Initial parameter values, a list of float32 arrays.
        constraints: The constraint (or `None`) of every parameter.
        x, y, w: Features, one-hot labels and sample weights (with mean
            one), NumPy arrays.
        solver: `"adam"` or `"sgd"`.
        learning_rate: The learning rate.
        batch_size: The number of samples per step.
        epochs: The maximal number of passes over the data.
        tol: Stop when the epoch loss has not improved by more than `tol`
            for `N_ITER_NO_CHANGE` epochs (`None`: never stop early).
        rng: A `numpy.random.RandomState` for the shuffling.
        optimizer_state: The optimizer variables of a previous call, to
            continue from (`partial_fit`).
        verbose: Show a Keras progress bar.

    Returns:
        A tuple `(values, n_epochs, loss_curve, optimizer_state, converged)`.
    """
    variables = []
    for index, (value, constraint) in enumerate(zip(values, constraints)):
        variable = keras.Variable(value, dtype="float32", name=f"parameter_{index}")
        variable.constraint = constraint
        variables.append(variable)
    optimizer = _make_optimizer(solver, learning_rate)
    optimizer.build(variables)
    if optimizer_state is not None:
        for variable, state in zip(optimizer.variables, optimizer_state):
            # The learning rate is the estimator's current parameter.
            if "learning_rate" not in variable.path:
                variable.assign(state)

    samples = x.shape[0]
    progress = _progress_bar(epochs, verbose)
    loss_curve, best, stale, converged = [], np.inf, 0, False
    for _ in range(epochs):
        order = rng.permutation(samples)
        total = 0.0
        for start in range(0, samples, batch_size):
            batch = order[start : start + batch_size]
            # The mean of `w` is one: dividing by the batch size makes each
            # step an unbiased estimate of the mean loss.
            value, gradients = evaluate(
                [_autodiff.to_numpy(variable.value) for variable in variables],
                x[batch],
                y[batch],
                w[batch] / batch.size,
            )
            optimizer.apply(
                [ops.convert_to_tensor(g, "float32") for g in gradients], variables
            )
            total += value * batch.size
        loss_curve.append(total / samples)
        progress.update(len(loss_curve), values=[("loss", loss_curve[-1])])
        if tol is not None:
            if loss_curve[-1] < best - tol:
                best, stale = loss_curve[-1], 0
            else:
                stale += 1
            if stale >= N_ITER_NO_CHANGE:
                converged = True
                break
    state = [_autodiff.to_numpy(variable.value) for variable in optimizer.variables]
    values = [
        np.asarray(_autodiff.to_numpy(variable.value), dtype="float32")
        for variable in variables
    ]
    return values, len(loss_curve), loss_curve, state, converged
