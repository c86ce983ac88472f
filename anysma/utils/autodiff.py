"""Backend plumbing: gradients, compilation, padding, thread limits.

The scikit-learn estimators keep their parameters as NumPy arrays and
evaluate the Keras models statelessly (`model.stateless_call`), so one model
serves every estimator of the same structure; `anysma.robustness` attacks a
model with gradients of its inputs. This module turns a function of a list
of tensors into what they need, on every trainable backend:

- `value_and_grad(fn)`: `(value, gradients)` of a scalar function of a list
  of tensors (`jax.value_and_grad`, `torch.autograd.grad`,
  `tf.GradientTape`);
- `compiled(fn)`: `jax.jit` on JAX and `tf.function` on TensorFlow, where
  eager execution is slow, and the function itself on PyTorch, whose eager
  execution is fast;
- `pad_rows(array, n)`: zero rows appended, so that compiled functions
  always see the same shapes;
- `thread_limit(work)`: one BLAS/OpenMP thread for small computations.
"""

import contextlib

import keras
import numpy as np
from threadpoolctl import threadpool_limits

# Up to about this much work per evaluation (samples x prototypes x
# features x matrix columns), one thread is faster than several: starting and
# synchronizing BLAS/OpenMP threads costs more than they save on the small
# operations of an LVQ model (measured 5-10x on scikit-learn's digits with
# PyTorch on two busy cores).
SMALL_WORK = 2**28


def backend():
    """The name of the active Keras backend."""
    return keras.backend.backend()


def check_trainable_backend():
    """Raise if the active backend has no automatic differentiation."""
    if backend() not in ("jax", "torch", "tensorflow"):
        raise RuntimeError(
            "The anysma scikit-learn estimators need a Keras backend that can "
            "train (jax, torch or tensorflow). Received: KERAS_BACKEND="
            f"{backend()!r}"
        )


def compiles():
    """Whether `compiled` compiles (on JAX and TensorFlow)."""
    return backend() in ("jax", "tensorflow")


def compiled(fn):
    """`fn` as `jax.jit` or `tf.function`; unchanged on PyTorch."""
    if backend() == "jax":
        import jax

        return jax.jit(fn)
    if backend() == "tensorflow":
        import tensorflow as tf

        # anysma's functions have no Python control flow on tensors (they
        # also run under `jax.jit`), so AutoGraph's source conversion only
        # costs time: it was 2 of the 2.5 s of a first GMLVQClassifier fit.
        return tf.function(fn, autograph=False)
    return fn


def no_grad(fn):
    """`fn` without gradient recording (PyTorch keeps no autograd graph)."""
    if backend() != "torch":
        return fn
    import torch

    def call(*args):
        with torch.no_grad():
            return fn(*args)

    return call


def value_and_grad(fn, has_aux=False):
    """Value and gradient of `fn(values, *data)` with respect to `values`.

    Args:
        fn: A function of a list of tensors `values` and further arguments,
            written with `keras.ops`, returning a scalar (or, with
            `has_aux`, a pair `(scalar, auxiliary output)`).
        has_aux: Whether `fn` returns an auxiliary output.

    Returns:
        A function `(values, *data) -> (value, gradients)` with `gradients`
        a list like `values` (zeros where `fn` does not depend on a value);
        `value` is the pair `(scalar, auxiliary output)` with `has_aux`. It
        is compiled on JAX and TensorFlow.
    """
    check_trainable_backend()
    name = backend()
    if name == "jax":
        import jax

        return jax.jit(jax.value_and_grad(fn, has_aux=has_aux))

    def split(result):
        return result if has_aux else (result, None)

    def join(value, aux):
        return (value, aux) if has_aux else value

    if name == "torch":
        import torch

        def torch_value_and_grad(values, *data):
            tensors = [
                keras.ops.convert_to_tensor(value).detach().requires_grad_(True)
                for value in values
            ]
            value, aux = split(fn(tensors, *data))
            gradients = torch.autograd.grad(value, tensors, allow_unused=True)
            gradients = [
                torch.zeros_like(tensor) if gradient is None else gradient
                for tensor, gradient in zip(tensors, gradients)
            ]
            if aux is not None:
                aux = aux.detach()
            return join(value.detach(), aux), gradients

        return torch_value_and_grad

    import tensorflow as tf

    def tensorflow_value_and_grad(values, *data):
        tensors = [tf.convert_to_tensor(value) for value in values]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            value, aux = split(fn(tensors, *data))
        gradients = tape.gradient(value, tensors)
        gradients = [
            tf.zeros_like(tensor) if gradient is None else gradient
            for tensor, gradient in zip(tensors, gradients)
        ]
        return join(value, aux), gradients

    # No AutoGraph, as in `compiled`.
    return tf.function(tensorflow_value_and_grad, autograph=False)


def to_numpy(value):
    """A tensor (or a list of them) as NumPy."""
    if isinstance(value, (list, tuple)):
        return [to_numpy(item) for item in value]
    return np.asarray(keras.ops.convert_to_numpy(value))


def thread_limit(work):
    """A context that runs small computations on one thread.

    Args:
        work: The work of one evaluation, about (see `SMALL_WORK`).

    Returns:
        `threadpoolctl.threadpool_limits(1)` (as scikit-learn uses it) when
        `work < SMALL_WORK`, else a context that changes nothing.
    """
    if work < SMALL_WORK:
        return threadpool_limits(limits=1)
    return contextlib.nullcontext()


def pad_rows(array, length):
    """`array` with zero rows appended up to `length` rows."""
    missing = length - array.shape[0]
    if missing <= 0:
        return array
    padding = np.zeros((missing,) + array.shape[1:], dtype=array.dtype)
    return np.concatenate([array, padding], axis=0)
