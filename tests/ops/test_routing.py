import keras
import numpy as np
from keras import ops

from anysma.ops.competition import competition
from anysma.ops.competition import gibbs_competition
from anysma.ops.competition import nearest_competition
from anysma.ops.distances import capsule_minkowski_distance
from anysma.ops.distances import capsule_tangent_distance
from anysma.ops.routing import dynamic_routing
from anysma.ops.routing import gibbs_routing
from anysma.ops.routing import measured_gibbs_routing
from anysma.ops.routing import mix_dissimilarities
from anysma.ops.routing import routing
from anysma.testing import TestCase
from anysma.testing.gradients import autodiff_gradient
from anysma.testing.gradients import numeric_gradient
from anysma.utils import prototype_index_tables

# === NumPy references (loops on purpose: independent of the vectorization) ===


def reference_softmax(values):
    values = np.asarray(values, dtype="float64")
    exponentials = np.exp(values - values.max())
    return exponentials / exponentials.sum()


def reference_gibbs_routing(signals, dissimilarities, beta=None, axis=2):
    signals = np.asarray(signals, dtype="float64")
    dissimilarities = np.asarray(dissimilarities, dtype="float64")
    batch, prototypes, channels = dissimilarities.shape
    beta = (
        np.ones(prototypes)
        if beta is None
        else np.broadcast_to(np.reshape(beta, (-1,)), (prototypes,))
    )
    probabilities = np.zeros_like(dissimilarities)
    for b in range(batch):
        if axis == 2:
            for p in range(prototypes):
                probabilities[b, p] = reference_softmax(
                    -beta[p] * dissimilarities[b, p]
                )
        else:
            for c in range(channels):
                probabilities[b, :, c] = reference_softmax(
                    -beta * dissimilarities[b, :, c]
                )
    return reference_routing(signals, dissimilarities, probabilities)


def reference_routing(signals, dissimilarities, weights):
    signals = np.asarray(signals, dtype="float64")
    batch, prototypes, channels = dissimilarities.shape
    routed = np.zeros((batch, prototypes) + signals.shape[3:])
    routed_dissimilarities = np.zeros((batch, prototypes))
    for b in range(batch):
        for p in range(prototypes):
            for c in range(channels):
                routed[b, p] += weights[b, p, c] * signals[b, p, c]
                routed_dissimilarities[b, p] += (
                    weights[b, p, c] * dissimilarities[b, p, c]
                )
    return routed, routed_dissimilarities, weights


def capsule_blocks(prototypes_per_capsule):
    """The prototype indices of each capsule, by counting (capsule-major)."""
    blocks, start = [], 0
    for count in prototypes_per_capsule:
        blocks.append(list(range(start, start + count)))
        start += count
    return blocks


def reference_competition(signals, dissimilarities, prototypes_per_capsule, weigh):
    """`weigh(d_block, capsule) -> weights` per capsule, then the weighted sums."""
    signals = np.asarray(signals, dtype="float64")
    dissimilarities = np.asarray(dissimilarities, dtype="float64")
    blocks = capsule_blocks(prototypes_per_capsule)
    batch = signals.shape[0]
    competed = np.zeros((batch, len(blocks)) + signals.shape[2:])
    competed_dissimilarities = np.zeros((batch, len(blocks)))
    for b in range(batch):
        for capsule, block in enumerate(blocks):
            weights = weigh(dissimilarities[b, block], capsule)
            for weight, prototype in zip(weights, block):
                competed[b, capsule] += weight * signals[b, prototype]
                competed_dissimilarities[b, capsule] += (
                    weight * dissimilarities[b, prototype]
                )
    return competed, competed_dissimilarities


def reference_nearest(signals, dissimilarities, prototypes_per_capsule):
    def weigh(block, capsule):
        return np.eye(len(block))[np.argmin(block)]

    return reference_competition(
        signals, dissimilarities, prototypes_per_capsule, weigh
    )


def reference_gibbs_competition(signals, dissimilarities, prototypes_per_capsule, beta):
    beta = np.broadcast_to(beta, (len(prototypes_per_capsule),))

    def weigh(block, capsule):
        return reference_softmax(-beta[capsule] * block)

    return reference_competition(
        signals, dissimilarities, prototypes_per_capsule, weigh
    )


def reference_flipmax(block, capsule=None):
    flipped = block.max() - block + block.min() + 1e-7
    return flipped / flipped.sum()


def reference_squash(vector, epsilon):
    squared_norm = np.sum(vector**2)
    return np.sqrt(max(squared_norm, epsilon)) / (1 + squared_norm) * vector


def reference_dynamic_routing(
    predictions, logits=None, iterations=3, epsilon=1e-7, norm_epsilon=1e-14, axis=1
):
    predictions = np.asarray(predictions, dtype="float64")
    batch, capsules, inputs = predictions.shape[:3]
    logits = (
        np.zeros((batch, capsules, inputs))
        if logits is None
        else np.array(logits, dtype="float64")
    )
    outputs = np.zeros((batch, capsules) + predictions.shape[3:])
    for iteration in range(iterations):
        coupling = np.zeros_like(logits)
        for b in range(batch):
            if axis == 1:
                for i in range(inputs):
                    coupling[b, :, i] = reference_softmax(logits[b, :, i])
            else:
                for k in range(capsules):
                    coupling[b, k] = reference_softmax(logits[b, k])
        for b in range(batch):
            for k in range(capsules):
                weighted = sum(
                    coupling[b, k, i] * predictions[b, k, i] for i in range(inputs)
                )
                outputs[b, k] = reference_squash(weighted, epsilon)
        if iteration < iterations - 1:
            for b in range(batch):
                for k in range(capsules):
                    for i in range(inputs):
                        logits[b, k, i] += np.sum(outputs[b, k] * predictions[b, k, i])
    similarities = np.sum(coupling * logits, axis=-1)
    lengths = np.sqrt(
        np.maximum(np.sum(outputs.reshape(batch, capsules, -1) ** 2, -1), norm_epsilon)
    )
    return outputs, similarities, lengths


def keras_flipmax(dissimilarities):
    """`flipmax` along the last axis, written in `keras.ops` for the tests."""
    flipped = (
        ops.max(dissimilarities, axis=-1, keepdims=True)
        - dissimilarities
        + ops.min(dissimilarities, axis=-1, keepdims=True)
        + 1e-7
    )
    return flipped / ops.sum(flipped, axis=-1, keepdims=True)


def partial_functions(function, values):
    """One single-argument function per argument of `function(*values)`.

    On JAX `function` is jitted once, with every argument passed explicitly
    (no captured constants), so all partial functions, their gradients and
    the finite differences share a few compiled programs; eager JAX compiles
    every operation and its derivative separately, which is much slower.
    """
    tensors = [ops.convert_to_tensor(value) for value in values]
    if keras.backend.backend() == "jax":
        import jax

        function = jax.jit(function)

    def partial(position):
        def evaluate(tensor):
            arguments = list(tensors)
            arguments[position] = tensor
            return function(*arguments)

        return evaluate

    return [partial(position) for position in range(len(values))]


def autodiff_gradients(function, *values):
    """Gradients of `sum(function(*values))` with respect to each argument."""
    return [
        autodiff_gradient(partial, value)
        for partial, value in zip(partial_functions(function, values), values)
    ]


def numeric_gradients(function, *values):
    """Finite-difference counterpart of `autodiff_gradients`."""
    return [
        numeric_gradient(partial, value)
        for partial, value in zip(partial_functions(function, values), values)
    ]


def random(*shape, seed=0):
    return np.random.RandomState(seed).uniform(0.1, 2.0, size=shape).astype("float32")


# === Routing ===


class GibbsRoutingTest(TestCase):
    def test_channels_axis_matches_reference(self):
        signals, dissimilarities = random(2, 3, 5, 4), random(2, 3, 5, seed=1)
        routed, routed_dissimilarities, probabilities = gibbs_routing(
            signals, dissimilarities, return_probabilities=True
        )
        expected = reference_gibbs_routing(signals, dissimilarities)
        self.assertAllClose(routed, expected[0], atol=1e-5)
        self.assertAllClose(routed_dissimilarities, expected[1], atol=1e-5)
        self.assertAllClose(probabilities, expected[2], atol=1e-6)
        self.assertAllClose(ops.sum(probabilities, axis=2), np.ones((2, 3)), atol=1e-6)
        # "channels" and -1 name the same axis; two outputs by default.
        for axis in ("channels", -1):
            outputs = gibbs_routing(signals, dissimilarities, axis=axis)
            self.assertLen(outputs, 2)
            self.assertAllClose(outputs[0], expected[0], atol=1e-5)

    def test_beta_shapes(self):
        signals, dissimilarities = random(2, 3, 5, 4), random(2, 3, 5, seed=1)
        beta = np.array([0.5, 1.0, 3.0], dtype="float32")
        expected = reference_gibbs_routing(signals, dissimilarities, beta)
        for shaped_beta in (beta, beta[:, None]):
            routed, routed_dissimilarities = gibbs_routing(
                signals, dissimilarities, beta=shaped_beta
            )
            self.assertAllClose(routed, expected[0], atol=1e-5)
            self.assertAllClose(routed_dissimilarities, expected[1], atol=1e-5)
        expected = reference_gibbs_routing(signals, dissimilarities, 2.0)
        routed, _ = gibbs_routing(signals, dissimilarities, beta=2.0)
        self.assertAllClose(routed, expected[0], atol=1e-5)

    def test_capsules_axis_normalizes_over_prototypes(self):
        signals, dissimilarities = random(2, 3, 5, 4), random(2, 3, 5, seed=1)
        beta = np.array([[0.5], [1.0], [3.0]], dtype="float32")
        routed, routed_dissimilarities, probabilities = gibbs_routing(
            signals, dissimilarities, beta, axis="capsules", return_probabilities=True
        )
        expected = reference_gibbs_routing(signals, dissimilarities, beta, axis=1)
        self.assertAllClose(routed, expected[0], atol=1e-5)
        self.assertAllClose(routed_dissimilarities, expected[1], atol=1e-5)
        self.assertAllClose(ops.sum(probabilities, axis=1), np.ones((2, 5)), atol=1e-6)
        self.assertAllClose(gibbs_routing(signals, dissimilarities, beta, 1)[0], routed)

    def test_multi_dimensional_atoms_batch_one_and_one_channel(self):
        signals, dissimilarities = random(1, 2, 3, 4, 5), random(1, 2, 3, seed=1)
        routed, routed_dissimilarities = gibbs_routing(signals, dissimilarities)
        self.assertShapeEqual(routed, (1, 2, 4, 5))
        expected = reference_gibbs_routing(signals, dissimilarities)
        self.assertAllClose(routed, expected[0], atol=1e-5)
        self.assertAllClose(routed_dissimilarities, expected[1], atol=1e-5)
        # One channel: the routing passes the single signal on.
        routed, routed_dissimilarities = gibbs_routing(
            signals[:, :, :1], dissimilarities[:, :, :1]
        )
        self.assertAllClose(routed, signals[:, :, 0])
        self.assertAllClose(routed_dissimilarities, dissimilarities[:, :, 0])

    def test_float16(self):
        signals, dissimilarities = random(2, 3, 5, 4), random(2, 3, 5, seed=1)
        routed, routed_dissimilarities = gibbs_routing(
            signals.astype("float16"), dissimilarities.astype("float16")
        )
        self.assertEqual(keras.backend.standardize_dtype(routed.dtype), "float16")
        expected = reference_gibbs_routing(signals, dissimilarities)
        self.assertAllClose(routed, expected[0], atol=1e-2, rtol=1e-2)
        self.assertAllClose(routed_dissimilarities, expected[1], atol=1e-2, rtol=1e-2)

    def test_gradients(self):
        signals, dissimilarities = random(1, 2, 3, 2), random(1, 2, 3, seed=1)
        weights = ops.convert_to_tensor(random(1, 2, 2, seed=2))

        def loss(signals, dissimilarities):
            routed, routed_dissimilarities = gibbs_routing(signals, dissimilarities)
            return ops.sum(routed * weights) + ops.sum(routed_dissimilarities)

        gradients = autodiff_gradients(loss, signals, dissimilarities)
        expected = numeric_gradients(loss, signals, dissimilarities)
        self.assertAllClose(gradients, expected, atol=2e-3, rtol=2e-3)
        # Zero dissimilarities and zero signals give finite gradients.
        self.assertAllFinite(
            autodiff_gradients(
                loss, np.zeros_like(signals), np.zeros_like(signals[..., 0])
            )
        )

    def test_invalid_arguments(self):
        signals, dissimilarities = random(2, 3, 5, 4), random(2, 3, 5)
        with self.assertRaisesRegex(ValueError, r"`axis` must be .*Received: axis=0"):
            gibbs_routing(signals, dissimilarities, axis=0)
        with self.assertRaisesRegex(
            ValueError,
            r"Received: signals.shape=\(2, 3, 5, 4\), "
            r"dissimilarities.shape=\(2, 4, 5\)",
        ):
            gibbs_routing(signals, random(2, 4, 5))
        with self.assertRaisesRegex(
            ValueError, r"`dissimilarities` must have rank 3.*Received"
        ):
            gibbs_routing(signals, random(2, 3))
        with self.assertRaisesRegex(ValueError, r"`beta` must be .*\(3,\)"):
            gibbs_routing(signals, dissimilarities, beta=np.ones(4))


class SharedSignalRoutingTest(TestCase):
    """Signals shared by all prototypes, `(B, 1, C, *A)`, route as tiled ones."""

    def test_gibbs_routing_and_routing_equal_tiled_signals(self):
        shared, dissimilarities = random(2, 1, 5, 2, 3), random(2, 4, 5, seed=1)
        tiled = np.repeat(shared, 4, axis=1)
        expected = reference_gibbs_routing(tiled, dissimilarities)
        for axis in ("channels", "capsules"):
            with self.subTest(axis=axis):
                routed, routed_dissimilarities = gibbs_routing(
                    shared, dissimilarities, axis=axis
                )
                reference = reference_gibbs_routing(
                    tiled, dissimilarities, axis=2 if axis == "channels" else 1
                )
                self.assertShapeEqual(routed, (2, 4, 2, 3))
                self.assertAllClose(routed, reference[0], atol=1e-5)
                self.assertAllClose(routed_dissimilarities, reference[1], atol=1e-5)
        routed, _ = routing(shared, dissimilarities, keras_flipmax)
        weights = np.apply_along_axis(
            reference_flipmax, -1, dissimilarities.astype("float64")
        )
        self.assertAllClose(
            routed, reference_routing(tiled, dissimilarities, weights)[0], atol=1e-5
        )
        self.assertAllClose(
            gibbs_routing(shared, dissimilarities)[0], expected[0], atol=1e-5
        )

    def test_gradients_equal_those_of_tiled_signals(self):
        shared, dissimilarities = random(1, 1, 3, 2), random(1, 2, 3, seed=1)
        weights = ops.convert_to_tensor(random(1, 2, 2, seed=2))

        def loss(signals, dissimilarities):
            routed, routed_dissimilarities = gibbs_routing(signals, dissimilarities)
            return ops.sum(routed * weights) + ops.sum(routed_dissimilarities)

        def tiled_loss(signals, dissimilarities):
            return loss(ops.repeat(signals, 2, axis=1), dissimilarities)

        self.assertAllClose(
            autodiff_gradients(loss, shared, dissimilarities),
            numeric_gradients(tiled_loss, shared, dissimilarities),
            atol=2e-3,
            rtol=2e-3,
        )

    def test_other_sizes_on_axis_1_are_rejected(self):
        with self.assertRaisesRegex(ValueError, r"may also be 1.*signals.shape"):
            gibbs_routing(random(2, 2, 5, 4), random(2, 3, 5))


def reference_measured_gibbs_routing(signals, prototypes, incoming, alpha):
    """Tile, measure the Euclidean distance, mix, route: the plain formula."""
    prototypes = np.asarray(prototypes, "float64")
    tiled = np.broadcast_to(
        np.asarray(signals, "float64"),
        (signals.shape[0], len(prototypes)) + signals.shape[2:],
    )
    distances = np.sqrt(
        np.maximum(np.sum((tiled - prototypes[None, :, None]) ** 2, -1), 1e-7)
    )
    mixed = (1 - alpha) * incoming + alpha * distances
    return reference_gibbs_routing(tiled, mixed)


class MeasuredGibbsRoutingTest(TestCase):
    def test_matches_the_plain_formula(self):
        shared, prototypes = random(2, 1, 6, 3), random(4, 3, seed=1)
        incoming = random(2, 4, 6, seed=2)
        routed, routed_dissimilarities, probabilities = measured_gibbs_routing(
            shared,
            prototypes,
            capsule_minkowski_distance,
            incoming,
            linear_factor=0.3,
            return_probabilities=True,
        )
        expected = reference_measured_gibbs_routing(shared, prototypes, incoming, 0.3)
        self.assertAllClose(routed, expected[0], atol=1e-5)
        self.assertAllClose(routed_dissimilarities, expected[1], atol=1e-5)
        self.assertAllClose(probabilities, expected[2], atol=1e-5)
        # Without incoming dissimilarities the distances are routed alone.
        routed, routed_dissimilarities = measured_gibbs_routing(
            shared, prototypes, capsule_minkowski_distance, beta=2.0
        )
        distances = capsule_minkowski_distance(shared, prototypes)
        expected = gibbs_routing(shared, distances, beta=2.0)
        self.assertAllClose(routed, expected[0], atol=1e-6)
        self.assertAllClose(routed_dissimilarities, expected[1], atol=1e-6)

    def test_gradients_match_the_plain_formula(self):
        shared, prototypes = random(1, 1, 3, 2), random(2, 2, seed=1)
        incoming = random(1, 2, 3, seed=2)
        basis = np.float32([[0.6], [0.8]])
        weights = ops.convert_to_tensor(random(1, 2, 2, seed=3))

        def loss(signals, prototypes):
            routed, routed_dissimilarities = measured_gibbs_routing(
                signals,
                prototypes,
                lambda s, w: capsule_tangent_distance(s, w, basis),
                incoming,
                linear_factor=0.5,
            )
            return ops.sum(routed * weights) + ops.sum(routed_dissimilarities)

        def plain(signals, prototypes):
            # Tiled signals and the explicit residual (I - W W^T)(x - w).
            tiled = ops.repeat(signals, 2, axis=1)
            differences = tiled - prototypes[None, :, None]
            residual = differences - ops.matmul(ops.matmul(differences, basis), basis.T)
            distances = ops.sqrt(
                ops.maximum(ops.sum(ops.square(residual), axis=-1), 1e-7)
            )
            mixed = 0.5 * ops.convert_to_tensor(incoming) + 0.5 * distances
            routed, routed_dissimilarities = gibbs_routing(tiled, mixed)
            return ops.sum(routed * weights) + ops.sum(routed_dissimilarities)

        self.assertAllClose(
            autodiff_gradients(loss, shared, prototypes),
            numeric_gradients(plain, shared, prototypes),
            atol=3e-3,
            rtol=3e-3,
        )

    def test_mix_dissimilarities(self):
        incoming, distances = random(2, 3), random(2, 3, seed=1)
        self.assertAllClose(
            mix_dissimilarities(incoming, distances), incoming + distances
        )
        self.assertAllClose(
            mix_dissimilarities(incoming, distances, 0.25),
            0.75 * incoming + 0.25 * distances,
        )
        with self.assertRaisesRegex(ValueError, r"Received: linear_factor=1"):
            mix_dissimilarities(incoming, distances, 1)

    def test_invalid_arguments(self):
        shared, prototypes = random(2, 1, 6, 3), random(4, 3, seed=1)
        with self.assertRaisesRegex(ValueError, r"`distance` must be a callable"):
            measured_gibbs_routing(shared, prototypes, "euclidean")
        with self.assertRaisesRegex(ValueError, r"must have rank 3"):
            measured_gibbs_routing(shared, prototypes, lambda s, w: ops.ones((2, 4)))


class RoutingTest(TestCase):
    def test_matches_reference(self):
        signals, dissimilarities = random(2, 3, 5, 4), random(2, 3, 5, seed=1)
        routed, routed_dissimilarities, weights = routing(
            signals, dissimilarities, keras_flipmax, return_probabilities=True
        )
        flat = dissimilarities.astype("float64")
        expected_weights = np.apply_along_axis(reference_flipmax, -1, flat)
        expected = reference_routing(signals, flat, expected_weights)
        self.assertAllClose(weights, expected_weights, atol=1e-6)
        self.assertAllClose(routed, expected[0], atol=1e-5)
        self.assertAllClose(routed_dissimilarities, expected[1], atol=1e-5)

    def test_invalid_arguments(self):
        signals, dissimilarities = random(2, 3, 5, 4), random(2, 3, 5)
        with self.assertRaisesRegex(
            ValueError, "`probability_transformation` must be a callable.*Received"
        ):
            routing(signals, dissimilarities, "flipmax")
        with self.assertRaisesRegex(ValueError, "must return weights of the shape"):
            routing(signals, dissimilarities, lambda d: d[..., :2])


# === Competition ===

# Six prototypes each, so that the tests share shapes (and compiled kernels).
DISTRIBUTIONS = {
    "equal": (3, 2),  # 2 capsules with 3 prototypes each
    "one_each": 6,
    "unequal": [1, 3, 1, 1],
}


def prototypes_per_capsule(distribution):
    return prototype_index_tables(distribution).prototypes_per_capsule


class CompetitionTest(TestCase):
    def run_against_reference(
        self, function, reference, atom_shape, make_kwargs=lambda tables: {}
    ):
        """Compare with `reference(signals, d, counts, **kwargs)` on each case."""
        for name, distribution in DISTRIBUTIONS.items():
            tables = prototype_index_tables(distribution)
            counts = tables.prototypes_per_capsule
            kwargs = make_kwargs(tables)
            signals = random(2, tables.proto_number, *atom_shape)
            dissimilarities = random(2, tables.proto_number, seed=1)
            outputs = function(
                signals,
                dissimilarities,
                tables.index_table,
                tables.valid_mask,
                return_probabilities=True,
                **kwargs,
            )
            expected = reference(signals, dissimilarities, counts, **kwargs)
            self.assertShapeEqual(
                outputs[0], (2, tables.capsule_number) + tuple(atom_shape)
            )
            self.assertAllClose(outputs[0], expected[0], atol=1e-5, msg=name)
            self.assertAllClose(outputs[1], expected[1], atol=1e-5, msg=name)
            probabilities = keras.ops.convert_to_numpy(outputs[2])
            self.assertShapeEqual(
                probabilities, (2, tables.capsule_number, max(counts))
            )
            # Padding gets no weight.
            self.assertAllClose(
                probabilities * ~tables.valid_mask, np.zeros_like(probabilities)
            )

    def test_nearest(self):
        self.run_against_reference(nearest_competition, reference_nearest, (3,))

    def test_nearest_ties_go_to_the_first_prototype(self):
        tables = prototype_index_tables((2, 2))
        signals = np.arange(8, dtype="float32").reshape(1, 4, 2)
        competed, competed_dissimilarities = nearest_competition(
            signals, np.zeros((1, 4)), tables.index_table, tables.valid_mask
        )
        self.assertAllClose(competed, signals[:, [0, 2]])
        self.assertAllClose(competed_dissimilarities, np.zeros((1, 2)))

    def test_gibbs(self):
        def make_kwargs(tables):
            beta = np.linspace(0.5, 3.0, tables.capsule_number)
            return {"beta": beta.astype("float32")}

        # Matrix atoms here; the other competition tests use vectors.
        self.run_against_reference(
            gibbs_competition, reference_gibbs_competition, (2, 3), make_kwargs
        )

    def test_gibbs_default_and_scalar_beta(self):
        tables = prototype_index_tables(DISTRIBUTIONS["unequal"])
        signals = random(2, tables.proto_number, 3)
        dissimilarities = random(2, tables.proto_number, seed=1)
        for beta in (None, 1.5):
            competed, competed_dissimilarities = gibbs_competition(
                signals,
                dissimilarities,
                tables.index_table,
                tables.valid_mask,
                beta=beta,
            )
            expected = reference_gibbs_competition(
                signals,
                dissimilarities,
                tables.prototypes_per_capsule,
                1.0 if beta is None else beta,
            )
            self.assertAllClose(competed, expected[0], atol=1e-5)
            self.assertAllClose(competed_dissimilarities, expected[1], atol=1e-5)

    def test_generic(self):
        def reference(signals, dissimilarities, counts, probability_transformation):
            return reference_competition(
                signals, dissimilarities, counts, reference_flipmax
            )

        self.run_against_reference(
            competition,
            reference,
            (3,),
            lambda tables: {"probability_transformation": keras_flipmax},
        )

    def test_identity_when_one_prototype_per_capsule(self):
        tables = prototype_index_tables(3)
        signals, dissimilarities = random(2, 3, 4), random(2, 3, seed=1)
        for function in (nearest_competition, gibbs_competition):
            competed, competed_dissimilarities = function(
                signals, dissimilarities, tables.index_table, tables.valid_mask
            )
            self.assertAllClose(competed, signals)
            self.assertAllClose(competed_dissimilarities, dissimilarities)

    def test_float16(self):
        tables = prototype_index_tables([2, 1, 3])
        signals, dissimilarities = random(2, 6, 4), random(2, 6, seed=1)
        half = (signals.astype("float16"), dissimilarities.astype("float16"))
        arguments = (tables.index_table, tables.valid_mask)
        counts = tables.prototypes_per_capsule
        cases = (
            (nearest_competition(*half, *arguments), reference_nearest),
            (
                gibbs_competition(*half, *arguments, beta=2.0),
                lambda s, d, c: reference_gibbs_competition(s, d, c, 2.0),
            ),
        )
        for outputs, reference in cases:
            self.assertEqual(
                keras.backend.standardize_dtype(outputs[0].dtype), "float16"
            )
            expected = reference(signals, dissimilarities, counts)
            self.assertAllClose(outputs[0], expected[0], atol=1e-2, rtol=1e-2)
            self.assertAllClose(outputs[1], expected[1], atol=1e-2, rtol=1e-2)

    def test_gibbs_gradients(self):
        tables = prototype_index_tables([2, 1, 3])
        signals, dissimilarities = random(1, 6, 2), random(1, 6, seed=1)
        weights = ops.convert_to_tensor(random(1, 3, 2, seed=2))
        beta = np.array([0.5, 1.0, 2.0])

        def loss(signals, dissimilarities):
            competed, competed_dissimilarities = gibbs_competition(
                signals, dissimilarities, tables.index_table, tables.valid_mask, beta
            )
            return ops.sum(competed * weights) + ops.sum(competed_dissimilarities)

        gradients = autodiff_gradients(loss, signals, dissimilarities)
        expected = numeric_gradients(loss, signals, dissimilarities)
        self.assertAllClose(gradients, expected, atol=2e-3, rtol=2e-3)
        zeros = (np.zeros_like(signals), np.zeros_like(dissimilarities))
        self.assertAllFinite(autodiff_gradients(loss, *zeros))

    def test_nearest_gradients_reach_only_the_winners(self):
        tables = prototype_index_tables([2, 1, 3])
        counts = tables.prototypes_per_capsule
        signals, dissimilarities = random(1, 6, 2), random(1, 6, seed=1)
        weights = ops.convert_to_tensor(random(1, 3, 2, seed=2))

        def nearest_loss(signals, dissimilarities):
            competed, competed_dissimilarities = nearest_competition(
                signals, dissimilarities, tables.index_table, tables.valid_mask
            )
            return ops.sum(competed * weights) + ops.sum(competed_dissimilarities)

        signal_gradient, dissimilarity_gradient = autodiff_gradients(
            nearest_loss, signals, dissimilarities
        )
        # Only the winners receive gradients.
        winners = np.zeros(6)
        for block in capsule_blocks(counts):
            winners[block[int(np.argmin(dissimilarities[0, block]))]] = 1
        self.assertAllClose(dissimilarity_gradient[0], winners)
        self.assertAllClose(
            signal_gradient[0],
            winners[:, None] * ops.convert_to_numpy(weights)[0].repeat(counts, axis=0),
        )
        zeros = (np.zeros_like(signals), np.zeros_like(dissimilarities))
        self.assertAllFinite(autodiff_gradients(nearest_loss, *zeros))

    def test_invalid_arguments(self):
        tables = prototype_index_tables([2, 1])
        signals, dissimilarities = random(2, 3, 4), random(2, 3)
        with self.assertRaisesRegex(
            ValueError,
            r"Received: signals.shape=\(2, 3, 4\), dissimilarities.shape=\(2, 4\)",
        ):
            nearest_competition(signals, random(2, 4), tables.index_table)
        with self.assertRaisesRegex(
            ValueError, "`prototype_index_table` must be a static .*Received"
        ):
            gibbs_competition(signals, dissimilarities, [0, 1, 2])
        with self.assertRaisesRegex(
            ValueError,
            r"`prototype_index_table` must hold prototype indices in \[0, 3\)",
        ):
            nearest_competition(signals, dissimilarities, [[0, 1], [2, 3]])
        with self.assertRaisesRegex(ValueError, "`valid_mask` must be .*Received"):
            nearest_competition(
                signals,
                dissimilarities,
                tables.index_table,
                [[False, True], [True, False]],
            )
        with self.assertRaisesRegex(ValueError, r"`beta` must be .*\(2,\)"):
            gibbs_competition(
                signals,
                dissimilarities,
                tables.index_table,
                tables.valid_mask,
                beta=np.ones(3),
            )
        with self.assertRaisesRegex(ValueError, "must be a callable"):
            competition(
                signals, dissimilarities, tables.index_table, tables.valid_mask, None
            )


# === Dynamic routing ===


class DynamicRoutingTest(TestCase):
    def test_matches_reference(self):
        predictions = random(2, 3, 4, 5) - 1
        logits = random(2, 3, 4, seed=1)
        for iterations in (1, 3):
            outputs = dynamic_routing(predictions, logits, iterations=iterations)
            expected = reference_dynamic_routing(predictions, logits, iterations)
            for output, reference in zip(outputs, expected):
                self.assertAllClose(output, reference, atol=1e-5, rtol=1e-5)
        # `logits=None` means zeros.
        self.assertAllClose(
            dynamic_routing(predictions)[0],
            reference_dynamic_routing(predictions)[0],
            atol=1e-5,
        )

    def test_coupling_over_the_inputs(self):
        # The original's `norm_axis="channels"`: each output capsule
        # normalizes its coupling coefficients over its inputs.
        predictions = random(2, 3, 4, 5) - 1
        logits = random(2, 3, 4, seed=1)
        expected = reference_dynamic_routing(predictions, logits, axis=2)
        for axis in (2, -1, "channels"):
            outputs = dynamic_routing(predictions, logits, axis=axis)
            for output, reference in zip(outputs, expected):
                self.assertAllClose(output, reference, atol=1e-5, rtol=1e-5)
        self.assertAllClose(
            dynamic_routing(predictions, logits, axis="capsules")[0],
            reference_dynamic_routing(predictions, logits)[0],
            atol=1e-5,
        )

    def test_multi_dimensional_atoms_and_batch_one(self):
        # The original used the un-reshaped predictions here and broke.
        predictions = random(1, 2, 3, 4, 4) - 1
        outputs, similarities, lengths = dynamic_routing(predictions, iterations=2)
        self.assertShapeEqual(outputs, (1, 2, 4, 4))
        expected = reference_dynamic_routing(predictions, iterations=2)
        self.assertAllClose(outputs, expected[0], atol=1e-5)
        self.assertAllClose(similarities, expected[1], atol=1e-5)
        self.assertAllClose(lengths, expected[2], atol=1e-5)

    def test_float16(self):
        predictions = (random(2, 3, 4, 5) - 1) / 2
        outputs = dynamic_routing(predictions.astype("float16"))
        expected = reference_dynamic_routing(predictions)
        self.assertEqual(keras.backend.standardize_dtype(outputs[2].dtype), "float16")
        for output, reference in zip(outputs, expected):
            self.assertAllClose(output, reference, atol=2e-2, rtol=2e-2)

    def test_gradients(self):
        predictions = random(1, 2, 3, 2, seed=3) - 1
        logits = random(1, 2, 3, seed=4)
        weights = ops.convert_to_tensor(random(1, 2, 2, seed=5))

        def loss(predictions, logits):
            outputs, similarities, lengths = dynamic_routing(predictions, logits)
            return ops.sum(outputs * weights) + ops.sum(similarities) + ops.sum(lengths)

        gradients = autodiff_gradients(loss, predictions, logits)
        expected = numeric_gradients(loss, predictions, logits)
        self.assertAllClose(gradients, expected, atol=2e-3, rtol=2e-3)
        # All-zero predictions: zero vectors are squashed and measured.
        self.assertAllFinite(
            autodiff_gradients(loss, np.zeros_like(predictions), np.zeros_like(logits))
        )

    def test_invalid_arguments(self):
        predictions = random(2, 3, 4, 5)
        for iterations in (0, 2.0, True, None):
            with self.assertRaisesRegex(
                ValueError, rf"`iterations` must be .*Received: iterations={iterations}"
            ):
                dynamic_routing(predictions, iterations=iterations)
        with self.assertRaisesRegex(
            ValueError,
            r"Received: predictions.shape=\(2, 3, 4, 5\), logits.shape=\(2, 3, 5\)",
        ):
            dynamic_routing(predictions, random(2, 3, 5))
        with self.assertRaisesRegex(ValueError, "`norm_epsilon` must be a number"):
            dynamic_routing(predictions, norm_epsilon=-1)
        with self.assertRaisesRegex(ValueError, r"`axis` must be .*Received: axis=0"):
            dynamic_routing(predictions, axis=0)


# === Compiled graphs ===


class CompiledTest(TestCase):
    def test_all_functions_in_a_compiled_model(self):
        distribution = [2, 1, 3]
        tables = prototype_index_tables(distribution)
        arguments = (tables.index_table, tables.valid_mask)
        capsule_signals = keras.Input(shape=(6, 4, 2, 3))
        capsule_dissimilarities = keras.Input(shape=(6, 4))

        def network(inputs):
            signals, dissimilarities = gibbs_routing(*inputs, beta=np.ones((6, 1)))
            return (
                (signals, dissimilarities)
                + nearest_competition(signals, dissimilarities, *arguments)
                + gibbs_competition(signals, dissimilarities, *arguments)
                + competition(signals, dissimilarities, *arguments, keras_flipmax)
                + dynamic_routing(inputs[0], inputs[1], iterations=2)
            )

        outputs = keras.layers.Lambda(network)(
            [capsule_signals, capsule_dissimilarities]
        )
        model = keras.Model([capsule_signals, capsule_dissimilarities], outputs)
        model.compile(jit_compile=keras.backend.backend() != "torch")
        data = [random(2, 6, 4, 2, 3), random(2, 6, 4, seed=1)]
        predicted = model.predict(data, verbose=0)

        routed = reference_gibbs_routing(*data)[:2]
        expected = (
            routed
            + reference_nearest(*routed, distribution)
            + reference_gibbs_competition(*routed, distribution, 1.0)
            + reference_competition(*routed, distribution, reference_flipmax)
            + reference_dynamic_routing(*data, iterations=2)
        )
        self.assertLen(predicted, len(expected))
        for compiled, reference in zip(predicted, expected):
            self.assertAllClose(compiled, reference, atol=1e-5, rtol=1e-5)
