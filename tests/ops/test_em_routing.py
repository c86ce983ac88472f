import math

import keras
import numpy as np
import pytest
from keras import ops

from anysma.ops.em_routing import capsule_patch_ids
from anysma.ops.em_routing import capsule_patches
from anysma.ops.em_routing import coordinate_addition
from anysma.ops.em_routing import em_routing
from anysma.ops.em_routing import initial_responsibilities
from anysma.ops.em_routing import inverse_temperatures
from anysma.testing import TestCase
from anysma.testing.gradients import autodiff_gradient

# === NumPy references of the paper's Procedure 1 (float64, loops on purpose) ===


def reference_em_routing(
    votes,
    activations,
    beta_u,
    beta_a,
    iterations=3,
    final_lambda=0.01,
    epsilon=1e-4,
    cost_normalization=100.0,
    child_ids=None,
):
    """Hinton et al.'s EM routing with Gritzman's corrections, with loops."""
    votes = np.asarray(votes, "float64")
    activations = np.asarray(activations, "float64")
    batch, groups, inputs, outputs, _ = votes.shape
    if child_ids is None:
        child_ids = np.arange(groups * inputs).reshape(groups, inputs)
    # Which (group, slot) pairs hold each input capsule.
    slots = {}
    for n in range(groups):
        for c in range(inputs):
            slots.setdefault(int(child_ids[n, c]), []).append((n, c))
    scale = 1.0 if cost_normalization is None else cost_normalization * outputs / inputs
    poses = np.zeros((batch, groups, outputs, votes.shape[-1]))
    output_activations = np.zeros((batch, groups, outputs))
    for b in range(batch):
        r = np.zeros((groups, inputs, outputs))
        for members in slots.values():
            for n, c in members:
                r[n, c, :] = 1.0 / (len(members) * outputs)
        for t in range(iterations):
            lam = final_lambda * (1 - 0.95 ** (t + 1))
            mu = np.zeros((groups, outputs, votes.shape[-1]))
            var = np.zeros_like(mu)
            a_out = np.zeros((groups, outputs))
            for n in range(groups):
                for o in range(outputs):
                    weights = r[n, :, o] * activations[b, n]
                    total = weights.sum()
                    v = votes[b, n, :, o]
                    mu[n, o] = (weights[:, None] * v).sum(0) / total if total else 0.0
                    var[n, o] = (
                        (weights[:, None] * (v - mu[n, o]) ** 2).sum(0) / total
                        if total
                        else 0.0
                    ) + epsilon
                    cost = (
                        (beta_u[o] + np.log(np.sqrt(var[n, o]))) * total * scale
                    ).sum()
                    a_out[n, o] = 1.0 / (1.0 + np.exp(-lam * (beta_a[o] - cost)))
            if t < iterations - 1:
                for members in slots.values():
                    scores = []
                    for n, c in members:
                        for o in range(outputs):
                            log_p = (
                                -(
                                    (votes[b, n, c, o] - mu[n, o]) ** 2
                                    / (2 * var[n, o])
                                ).sum()
                                - 0.5 * np.log(2 * math.pi * var[n, o]).sum()
                            )
                            scores.append(np.log(a_out[n, o]) + log_p)
                    scores = np.array(scores)
                    p = np.exp(scores - scores.max())
                    p /= p.sum()
                    for index, (n, c) in enumerate(members):
                        r[n, c] = p[index * outputs : (index + 1) * outputs]
        poses[b] = mu
        output_activations[b] = a_out
    return poses, output_activations


def jitted(function):
    """On JAX, compile `function` once (eager JAX compiles every operation)."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(function)
    return function


def numeric_gradient64(function, point, delta=1e-6):
    point = np.asarray(point, "float64")
    gradient = np.zeros_like(point)
    for index in np.ndindex(point.shape):
        shifted = point.copy()
        shifted[index] += delta
        upper = function(shifted)
        shifted[index] -= 2 * delta
        lower = function(shifted)
        gradient[index] = (upper - lower) / (2 * delta)
    return gradient


def random_case(seed=0, batch=2, groups=2, inputs=5, outputs=3, pose=4):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(batch, groups, inputs, outputs, pose)),
        rng.uniform(0.05, 1.0, size=(batch, groups, inputs)),
        rng.normal(scale=0.5, size=outputs),
        rng.normal(scale=0.5, size=outputs),
    )


class EMRoutingTest(TestCase):
    def test_matches_reference(self):
        votes, activations, beta_u, beta_a = random_case()
        # A large lambda makes the activations (and so the E-step) matter.
        for kwargs in (
            {},
            {"iterations": 1},
            {"iterations": 2, "final_lambda": 1.0, "cost_normalization": None},
            {"final_lambda": 0.5, "epsilon": 1e-2},
        ):
            poses, output_activations = em_routing(
                votes, activations, beta_u, beta_a, **kwargs
            )
            expected = reference_em_routing(
                votes, activations, beta_u, beta_a, **kwargs
            )
            self.assertAllClose(poses, expected[0], atol=1e-5, rtol=1e-4, msg=kwargs)
            self.assertAllClose(
                output_activations, expected[1], atol=1e-5, rtol=1e-4, msg=kwargs
            )

    def test_shared_children_match_reference(self):
        # A 4 x 4 grid of 2 types, K = 3, stride 1: 4 overlapping windows.
        ids = capsule_patch_ids(4, 4, 2, 3, strides=1)
        rng = np.random.default_rng(1)
        votes = rng.normal(size=(2, 4, 18, 3, 4))
        activations = rng.uniform(0.1, 1.0, size=(2, 4, 18))
        beta_u, beta_a = rng.normal(size=3), rng.normal(size=3)
        kwargs = {"final_lambda": 0.3, "cost_normalization": 1.0}
        poses, output_activations, responsibilities = em_routing(
            votes,
            activations,
            beta_u,
            beta_a,
            child_ids=ids,
            return_responsibilities=True,
            **kwargs,
        )
        expected = reference_em_routing(
            votes, activations, beta_u, beta_a, child_ids=ids, **kwargs
        )
        self.assertAllClose(poses, expected[0], atol=1e-5, rtol=1e-4)
        self.assertAllClose(output_activations, expected[1], atol=1e-5, rtol=1e-4)
        # Each input capsule distributes one unit over all its parents.
        totals = np.zeros((2, 32))
        per_slot = np.asarray(responsibilities).sum(-1).reshape(2, -1)
        np.add.at(totals, (slice(None), ids.reshape(-1)), per_slot)
        self.assertAllClose(totals, np.ones((2, 32)), atol=1e-5)
        # Without the ids the result differs: the ids matter.
        unshared = em_routing(votes, activations, beta_u, beta_a, **kwargs)
        self.assertGreater(np.abs(np.asarray(unshared[1]) - expected[1]).max(), 1e-4)

    def test_initial_responsibilities(self):
        ids = capsule_patch_ids(3, 3, 1, 2, strides=1)
        initial = initial_responsibilities((None, 4, 4, 5, 16), ids, 9)
        # The centre is in all 4 windows, a corner in one.
        self.assertAllClose(initial[0, 0, 3], np.full(5, 1 / 20))
        self.assertAllClose(initial[0, 0, 0], np.full(5, 1 / 5))

    def test_gradients_match_reference(self):
        votes, activations, beta_u, beta_a = random_case(2, inputs=4, pose=3)
        ids = np.array([[0, 1, 2, 3], [2, 3, 4, 5]])
        kwargs = {"final_lambda": 0.5, "child_ids": ids}
        weights = np.random.default_rng(3).normal(size=(2, 2, 3, 3))
        weights_a = np.random.default_rng(4).normal(size=(2, 2, 3))

        def loss(poses, output_activations):
            return (poses * weights).sum() + (output_activations * weights_a).sum()

        arguments = [votes, activations, beta_u, beta_a]
        for position in range(4):

            def tensor_function(tensor, position=position):
                values = list(arguments)
                values[position] = tensor
                poses, output_activations = em_routing(*values, **kwargs)
                return ops.sum(ops.multiply(poses, weights)) + ops.sum(
                    ops.multiply(output_activations, weights_a)
                )

            def numpy_function(value, position=position):
                values = list(arguments)
                values[position] = value
                return loss(*reference_em_routing(*values, **kwargs))

            # float32 autodiff (JAX runs without x64) against float64 finite
            # differences of the reference.
            actual = autodiff_gradient(
                jitted(tensor_function), arguments[position], "float32"
            )
            expected = numeric_gradient64(numpy_function, arguments[position])
            self.assertAllClose(actual, expected, atol=1e-4, rtol=1e-3, msg=position)

    def test_zero_variance_and_zero_activations_are_finite(self):
        votes = np.ones((2, 1, 4, 3, 16), dtype="float32")
        activations = np.zeros((2, 1, 4), dtype="float32")
        activations[0] = 1.0  # identical votes: zero variance

        def function(tensor):
            poses, output_activations = em_routing(
                tensor, activations, np.zeros(3, "float32"), np.zeros(3, "float32")
            )
            return ops.sum(poses) + ops.sum(output_activations)

        poses, output_activations = em_routing(
            votes, activations, np.zeros(3, "float32"), np.zeros(3, "float32")
        )
        self.assertAllFinite((poses, output_activations))
        self.assertAllClose(np.asarray(poses)[0], np.ones((1, 3, 16)))
        self.assertAllClose(np.asarray(poses)[1], np.zeros((1, 3, 16)))
        self.assertAllFinite(autodiff_gradient(jitted(function), votes))

    def test_float16_and_jit(self):
        votes, activations, beta_u, beta_a = (
            value.astype("float16") for value in random_case(5)
        )
        poses, output_activations = em_routing(votes, activations, beta_u, beta_a)
        self.assertEqual(keras.backend.standardize_dtype(poses.dtype), "float16")
        self.assertAllFinite((poses, output_activations))
        expected = reference_em_routing(votes, activations, beta_u, beta_a)
        self.assertAllClose(output_activations, expected[1], atol=2e-3, rtol=2e-3)

    def test_invalid_arguments(self):
        votes, activations, beta_u, beta_a = random_case()
        cases = [
            ({"iterations": 0}, "iterations"),
            ({"iterations": 2.0}, "iterations"),
            ({"final_lambda": 0}, "final_lambda"),
            ({"epsilon": -1.0}, "epsilon"),
            # No variance floor: identical votes would give log(0).
            ({"epsilon": 0.0}, "epsilon"),
            ({"cost_normalization": 0}, "cost_normalization"),
            ({"child_ids": np.zeros((3, 5), "int32")}, "child_ids"),
            ({"child_ids": np.zeros((2, 5))}, "child_ids"),
            (
                {"child_ids": np.ones((2, 5), "int32"), "num_children": 1},
                "num_children",
            ),
            ({"num_children": 3}, "num_children"),
        ]
        for kwargs, name in cases:
            with self.assertRaisesRegex(ValueError, name, msg=kwargs):
                em_routing(votes, activations, beta_u, beta_a, **kwargs)
        with self.assertRaisesRegex(ValueError, "votes"):
            em_routing(votes[0], activations, beta_u, beta_a)
        with self.assertRaisesRegex(ValueError, "activations"):
            em_routing(votes, activations[:, :, :2], beta_u, beta_a)
        with self.assertRaisesRegex(ValueError, "beta_a"):
            em_routing(votes, activations, beta_u, beta_a[:2])


class InverseTemperatureTest(TestCase):
    def test_schedule(self):
        self.assertAllClose(
            inverse_temperatures(3, 1.0), [0.05, 1 - 0.95**2, 1 - 0.95**3]
        )
        with self.assertRaisesRegex(ValueError, "final_lambda"):
            inverse_temperatures(3, -1.0)


class CapsulePatchesTest(TestCase):
    def test_patches_match_loops(self):
        rng = np.random.default_rng(0)
        grid = rng.normal(size=(2, 7, 6, 3, 2)).astype("float32")
        for kernel_size, strides in ((3, 2), (3, 1), (1, 1), (2, 3)):
            patches = np.asarray(capsule_patches(grid, kernel_size, strides))
            out_h = (7 - kernel_size) // strides + 1
            out_w = (6 - kernel_size) // strides + 1
            self.assertEqual(patches.shape, (2, out_h, out_w, kernel_size**2, 3, 2))
            for oh in range(out_h):
                for ow in range(out_w):
                    for k in range(kernel_size**2):
                        np.testing.assert_array_equal(
                            patches[:, oh, ow, k],
                            grid[
                                :,
                                oh * strides + k // kernel_size,
                                ow * strides + k % kernel_size,
                            ],
                        )
            ids = capsule_patch_ids(7, 6, 3, kernel_size, strides)
            id_grid = np.arange(7 * 6 * 3).reshape(1, 7, 6, 3)
            np.testing.assert_array_equal(
                ids,
                np.asarray(capsule_patches(id_grid, kernel_size, strides)).reshape(
                    out_h * out_w, -1
                ),
            )

    def test_patch_gradient(self):
        grid = np.random.default_rng(0).normal(size=(1, 4, 4, 2))
        gradient = autodiff_gradient(
            jitted(lambda tensor: capsule_patches(tensor, 3, 1)), grid, "float32"
        )
        # Each grid cell is counted once per window that contains it.
        expected = np.zeros((4, 4))
        for oh in range(2):
            for ow in range(2):
                expected[oh : oh + 3, ow : ow + 3] += 1
        self.assertAllClose(gradient[0, :, :, 0], expected)

    def test_invalid_grid(self):
        with self.assertRaisesRegex(ValueError, "kernel_size"):
            capsule_patches(np.zeros((1, 2, 2, 1)), 3)
        with self.assertRaisesRegex(ValueError, "strides"):
            capsule_patch_ids(4, 4, 1, 3, strides=0)
        with self.assertRaisesRegex(ValueError, "rank"):
            capsule_patches(np.zeros((2, 2)), 1)


class CoordinateAdditionTest(TestCase):
    def test_matches_paper(self):
        votes = np.random.default_rng(0).normal(size=(2, 3, 4, 5, 2, 4, 4))
        added = np.asarray(coordinate_addition(votes))
        expected = votes.copy()
        for h in range(3):
            for w in range(4):
                expected[:, h, w, ..., 0, 3] += (h + 0.5) / 3
                expected[:, h, w, ..., 1, 3] += (w + 0.5) / 4
        self.assertAllClose(added, expected, atol=1e-6)

    def test_invalid_shape(self):
        with self.assertRaisesRegex(ValueError, "votes"):
            coordinate_addition(np.zeros((1, 2, 2, 3, 3)))


@pytest.mark.parametrize("iterations", [1, 3])
def test_routing_in_a_compiled_function(iterations):
    votes, activations, beta_u, beta_a = (
        value.astype("float32") for value in random_case(7)
    )
    inputs = keras.Input(shape=votes.shape[1:])
    activation_inputs = keras.Input(shape=activations.shape[1:])
    outputs = keras.layers.Lambda(
        lambda values: em_routing(
            values[0], values[1], beta_u, beta_a, iterations=iterations
        )[1]
    )((inputs, activation_inputs))
    model = keras.Model((inputs, activation_inputs), outputs)
    model.jit_compile = keras.backend.backend() != "torch"
    predicted = model.predict((votes, activations), verbose=0)
    expected = reference_em_routing(
        votes, activations, beta_u, beta_a, iterations=iterations
    )[1]
    np.testing.assert_allclose(predicted, expected, atol=1e-5, rtol=1e-4)
