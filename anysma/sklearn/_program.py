"""One Keras LVQ model per structure, shared by all estimators of it.

An estimator stores its learned parameters as NumPy arrays; the computation
runs through a `LVQProgram`: an `anysma.models` model (GLVQ, GMLVQ, ...) of
the right structure, evaluated statelessly with the estimator's parameters.
Programs are cached by structure, so refitting, cloning or cross-validating
an estimator builds no new Keras model.

On JAX and TensorFlow the functions are compiled (`jax.jit`,
`tf.function`), and compiling costs far more than evaluating these small
models. A program therefore evaluates data in chunks
of `CHUNK` rows (the last one zero-padded, with zero sample weight): one
compiled function per program and loss serves data sets of every size, and
also computes the predictions (its auxiliary output), so that a fit and the
predictions after it compile once.
"""

import functools
import threading

import keras
import numpy as np
from keras import ops

from anysma import constraints
from anysma import models
from anysma.ops.competition import nearest_competition
from anysma.utils import autodiff as _autodiff

# Rows per evaluation chunk. Predictions always run on full (zero-padded)
# chunks, so that every sample goes through the same computation whatever
# the size of the request: without padding, float32 results differ in the
# last bits between batch sizes.
CHUNK = 128


def _reparametrization(constraint):
    """A differentiable map onto the set that `constraint` projects to.

    The solvers evaluate the loss at the constrained point, so the gradient
    is that of the constrained problem and L-BFGS can run unconstrained.
    Omega normalization is differentiable as it is. The tangent distances
    depend only on the span of their bases, and QR gives an orthonormal
    basis of the same span whose gradient is well defined, whereas the
    SVD-based projection of `Orthogonalization` has no stable gradient at
    orthonormal matrices (equal singular values).
    """
    if constraint is None:
        return None
    if isinstance(constraint, constraints.Orthogonalization):
        return lambda matrices: ops.qr(matrices)[0]
    return constraint


class LVQProgram:
    """A Keras LVQ model with the functions the estimators evaluate.

    Args:
        model_name: The class name in `anysma.models` (`"GMLVQ"`, ...).
        model_kwargs: Its constructor arguments, a tuple of `(key, value)`
            pairs.
        scores: What `scores` returns: `"distances"` (the distance to every
            prototype, from the model's `routing_module`) or `"outputs"`
            (the model output, e.g. RSLVQ's class log-posteriors).
    """

    def __init__(self, model_name, model_kwargs, scores):
        self.model = getattr(models, model_name)(**dict(model_kwargs))
        variables = self.model.trainable_variables
        # Parameters are named by their role in the model ("prototypes",
        # "matrices", ...), so the estimators never spell a layer's name.
        role_of = {
            id(variable): role
            for role, variable in self.model.weights_by_role().items()
        }
        self.names = [role_of[id(variable)] for variable in variables]
        self.shapes = [tuple(variable.shape) for variable in variables]
        self.constraints = [variable.constraint for variable in variables]
        self._reparametrizations = [
            _reparametrization(constraint) for constraint in self.constraints
        ]
        if scores == "distances":
            # The GLVQ family is trained on the distances, not on the
            # model's flip output: on JAX, the gradient of the complete
            # graph of the tangent models comes out NaN once compiled (not
            # in eager mode); the same cost computed from the distances
            # (`class_distances`, `glvq_loss_over_dissimilarities`) is
            # finite on every backend.
            routing = self.model.routing_module
            self._scoring = keras.Model(self.model.inputs, routing.output[1])
        else:
            self._scoring = self.model
        scoring_names = [role_of[id(v)] for v in self._scoring.trainable_variables]
        self._scoring_order = [self.names.index(name) for name in scoring_names]
        self._scoring_non_trainable = [
            variable.value for variable in self._scoring.non_trainable_variables
        ]
        self._forward = _autodiff.compiled(_autodiff.no_grad(self._scores_of))
        self._objectives = {}
        self._lock = threading.Lock()

    # === Evaluation ===

    def _scores_of(self, values, x):
        ordered = [values[index] for index in self._scoring_order]
        scores, _ = self._scoring.stateless_call(
            ordered, self._scoring_non_trainable, x
        )
        return scores

    def class_distances(self, distances):
        """The distance to the closest prototype of each class, a tensor.

        The model's own competition (`NearestCompetition`, with its index
        tables) applied to the distances `(batch, prototypes)`; returns
        `(batch, classes)`.
        """
        tables = self.model.competition_module.prototype_tables
        # The competition moves signals along; these carry nothing.
        signals = ops.zeros(tuple(ops.shape(distances)) + (1,), distances.dtype)
        _, class_distances = nearest_competition(
            signals, distances, tables.index_table, tables.valid_mask
        )
        return class_distances

    def reparametrize(self, values):
        """Map parameter values onto their constraint sets (differentiably)."""
        return [
            value if reparametrization is None else reparametrization(value)
            for reparametrization, value in zip(self._reparametrizations, values)
        ]

    def constrained(self, values):
        """`reparametrize` on NumPy arrays, returning float32 NumPy arrays."""
        tensors = [ops.convert_to_tensor(value, "float32") for value in values]
        return [
            np.asarray(value, dtype="float32")
            for value in _autodiff.to_numpy(self.reparametrize(tensors))
        ]

    def objective(self, key, sample_loss, penalty=None):
        """The (compiled) value and gradient of a weighted training loss.

        The loss of a chunk of data is `sum_i w_i sample_loss(y_i,
        scores(x_i)) + penalty_scale * penalty`, evaluated at the
        reparametrized (constrained) values; the scores of `x` come along
        as auxiliary output.

        Args:
            key: A hashable description of `sample_loss` and `penalty`; the
                function is built once per key and program.
            sample_loss: `(y_true, scores) -> (batch,)` losses, with
                `y_true` one-hot and the scores of `scores`.
            penalty: `None` or a function of the dict `{role: value}` (roles
                as in `LVQModel.weights_by_role`) returning a scalar.

        Returns:
            A function `(values, x, y, w, penalty_scale) -> ((value,
            scores), gradients)` of tensors.
        """
        with self._lock:
            if key not in self._objectives:
                names = self.names

                def objective(values, x, y, w, penalty_scale):
                    values = self.reparametrize(values)
                    scores = self._scores_of(values, x)
                    losses = ops.cast(sample_loss(y, scores), "float32")
                    total = ops.sum(w * losses)
                    if penalty is not None:
                        value = penalty(dict(zip(names, values)))
                        total = total + penalty_scale * ops.cast(value, "float32")
                    return total, scores

                self._objectives[key] = _autodiff.value_and_grad(
                    objective, has_aux=True
                )
            return self._objectives[key]

    def chunks(self, x, y, w):
        """The data as the objective takes it: a list of tensor triples.

        One triple on PyTorch; chunks of `CHUNK` rows (zero padded, with
        zero weight) where the functions are compiled.
        """
        x = np.asarray(x, dtype="float32")
        y = np.asarray(y, dtype="float32")
        w = np.asarray(w, dtype="float32")
        if not _autodiff.compiles():
            return [tuple(ops.convert_to_tensor(array) for array in (x, y, w))]
        result = []
        for start in range(0, x.shape[0], CHUNK):
            part = slice(start, start + CHUNK)
            result.append(
                tuple(
                    ops.convert_to_tensor(_autodiff.pad_rows(array[part], CHUNK))
                    for array in (x, y, w)
                )
            )
        return result

    def value_and_gradient(self, objective, values, chunks):
        """The loss and its gradients on all chunks, as float64 NumPy.

        Args:
            objective: A function from `objective`.
            values: The parameter values, a list of float32 arrays.
            chunks: The data, from `chunks`.

        Returns:
            A tuple `(value, gradients)`: a float and a list of arrays.
        """
        tensors = [ops.convert_to_tensor(value, "float32") for value in values]
        total, gradients = 0.0, None
        for index, (x, y, w) in enumerate(chunks):
            penalty_scale = ops.convert_to_tensor(np.float32(index == 0))
            (value, _), parts = objective(tensors, x, y, w, penalty_scale)
            parts = [np.asarray(part, "float64") for part in _autodiff.to_numpy(parts)]
            total += float(_autodiff.to_numpy(value))
            if gradients is None:
                gradients = parts
            else:
                gradients = [total + part for total, part in zip(gradients, parts)]
        return total, gradients

    def scores(self, values, x):
        """Distances to the prototypes (or model outputs) of `x`, in NumPy.

        Args:
            values: The parameter values, in the order of `names`.
            x: Features `(samples, input_dim)`.

        Returns:
            A float32 array `(samples, prototypes)` (or `(samples, outputs)`).
        """
        tensors = [ops.convert_to_tensor(value, "float32") for value in values]
        x = np.asarray(x, dtype="float32")
        classes = self.model.output.shape[-1]
        # Where functions are compiled, a compiled objective (if there is
        # one) predicts without a compilation of its own.
        objective = next(iter(self._objectives.values()), None)
        if not _autodiff.compiles():
            objective = None
        results = []
        for start in range(0, x.shape[0], CHUNK):
            chunk = x[start : start + CHUNK]
            padded = ops.convert_to_tensor(_autodiff.pad_rows(chunk, CHUNK))
            if objective is None:
                outputs = self._forward(tensors, padded)
            else:
                # The arguments have the dtypes of training; others would
                # compile again.
                y, w = np.zeros((CHUNK, classes), "float32"), np.zeros(CHUNK, "float32")
                (_, outputs), _ = objective(
                    tensors,
                    padded,
                    ops.convert_to_tensor(y),
                    ops.convert_to_tensor(w),
                    ops.convert_to_tensor(np.float32(0)),
                )
            results.append(_autodiff.to_numpy(outputs)[: chunk.shape[0]])
        return np.concatenate(results, axis=0).astype("float32")

    def read(self, values, reader):
        """Call `reader(model)` with the model's weights set to `values`.

        Used to read derived quantities through the models' own properties
        (`prototypes`, `omega`, `relevances`, ...).
        """
        with self._lock:
            for variable, value in zip(self.model.trainable_variables, values):
                variable.assign(np.asarray(value, dtype=variable.dtype))
            return reader(self.model)


@functools.lru_cache(maxsize=32)
def get_program(model_name, model_kwargs, scores):
    """The cached `LVQProgram` of a structure (see `LVQProgram`)."""
    return LVQProgram(model_name, model_kwargs, scores)
