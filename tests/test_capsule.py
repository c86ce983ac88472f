import keras
import numpy as np

import anysma
from anysma.capsule import Module
from anysma.capsule import canonical_prototype_distribution
from anysma.modules import InputModule
from anysma.modules import OutputModule
from anysma.testing import TestCase


def random(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


@anysma.api_export.anysma_export
class Scale(Module):
    """A tiny module for the tests: multiplies signals by a learned scalar."""

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(), initializer="ones")

    def call(self, inputs):
        signals, dissimilarities = inputs
        return signals * self.scale, dissimilarities


class CapsuleStructureTest(TestCase):
    def test_prototype_distributions(self):
        self.assertEqual(canonical_prototype_distribution(3), [1, 1, 1])
        self.assertEqual(canonical_prototype_distribution((2, 3)), [2, 2, 2])
        self.assertEqual(canonical_prototype_distribution([1, 3]), [1, 3])
        capsule = anysma.Capsule(prototype_distribution=[1, 3, 2])
        self.assertEqual(capsule.proto_number, 6)
        self.assertEqual(capsule.capsule_number, 3)

    def test_invalid_prototype_distribution(self):
        with self.assertRaisesRegex(ValueError, "Received: prototype_distribution=0"):
            anysma.Capsule(prototype_distribution=0)
        with self.assertRaisesRegex(ValueError, r"prototype_distribution=\(1, 2, 3\)"):
            anysma.Capsule(prototype_distribution=(1, 2, 3))

    def test_add_chains_and_fills_distribution(self):
        input_module = InputModule(
            signal_shape=(1, -1), dissimilarity_initializer="zeros"
        )
        capsule = anysma.Capsule(prototype_distribution=(2, 3))
        self.assertIs(capsule.add(input_module), capsule)
        self.assertEqual(input_module.prototype_distribution, [2, 2, 2])

    def test_add_rejects_non_layers(self):
        with self.assertRaisesRegex(TypeError, "Capsule.add"):
            anysma.Capsule().add("dense")

    def test_get_module_and_pop(self):
        dense = keras.layers.Dense(3, name="dense_step")
        capsule = anysma.Capsule(prototype_distribution=2).add(
            [InputModule(dissimilarity_initializer="zeros", name="entry"), dense]
        )
        self.assertIs(capsule.get_module(name="dense_step"), dense)
        self.assertIs(capsule.get_module(index=0).name, "entry")
        with self.assertRaisesRegex(ValueError, "no module named 'missing'"):
            capsule.get_module(name="missing")
        with self.assertRaisesRegex(ValueError, "exactly one of"):
            capsule.get_module()
        self.assertIs(capsule.pop(), dense)
        self.assertEqual(len(capsule.modules), 1)

    def test_empty_capsule(self):
        with self.assertRaisesRegex(ValueError, "is empty"):
            anysma.Capsule()(np.zeros((1, 2)))


class CapsuleCallTest(TestCase):
    def _capsule(self):
        return anysma.Capsule(prototype_distribution=3, name="caps").add(
            [
                InputModule(
                    signal_shape=(2, 2),
                    dissimilarity_initializer="zeros",
                    trainable=False,
                ),
                keras.layers.Dense(5, name="signal_dense"),
                Scale(name="scale"),
            ]
        )

    def test_keras_layers_act_on_signals_only(self):
        capsule = self._capsule()
        signals, dissimilarities = capsule(random((4, 4)))
        self.assertShapeEqual(signals, (4, 3, 2, 5))
        self.assertShapeEqual(dissimilarities, (4, 3, 2))
        self.assertAllClose(dissimilarities, np.zeros((4, 3, 2)))

    def test_modules_are_nodes_of_the_functional_model(self):
        inputs = keras.Input((4,))
        capsule = self._capsule()
        outputs = capsule(inputs)
        model = keras.Model(inputs, outputs)
        self.assertIs(
            model.get_layer("signal_dense"), capsule.get_module("signal_dense")
        )
        self.assertIs(model.get_layer("scale"), capsule.get_module("scale"))

    def test_recall_shares_weights(self):
        capsule = self._capsule()
        first, second = keras.Input((4,)), keras.Input((4,))
        model = keras.Model([first, second], [capsule(first)[0], capsule(second)[0]])
        data = random((2, 4))
        out_first, out_second = model.predict([data, data], verbose=0)
        self.assertAllClose(out_first, out_second)
        self.assertEqual(len(model.weights), len(capsule.weights))

    def test_functional_model_round_trip(self):
        inputs = keras.Input((4,))
        signals, dissimilarities = self._capsule()(inputs)
        outputs = keras.layers.Dense(2)(keras.layers.Flatten()(signals))
        model = keras.Model(inputs, outputs)
        self.run_training_step(model, random((8, 4)))
        self.run_model_saving_test(model, random((8, 4)))

    def test_sequential_and_config_round_trip(self):
        capsule = self._capsule()
        model = keras.Sequential([keras.Input((4,)), capsule])
        data = random((3, 4))
        expected = model.predict(data, verbose=0)
        self.run_serialization_test(capsule)
        restored = self.run_model_saving_test(model, data)
        self.assertAllClose(restored.predict(data, verbose=0), expected)

    def test_nested_capsules(self):
        inner = anysma.Capsule(name="inner").add(
            [keras.layers.Dense(5, name="inner_dense"), Scale(name="inner_scale")]
        )
        outer = anysma.Capsule(prototype_distribution=3).add(
            [
                InputModule(
                    signal_shape=(2, 2),
                    dissimilarity_initializer="zeros",
                    trainable=False,
                ),
                inner,
            ]
        )
        signals, _ = outer(random((4, 4)))
        self.assertShapeEqual(signals, (4, 3, 2, 5))
        self.assertEqual(len(outer.weights), 4)

    def test_subclassed_model(self):
        class Wrapper(keras.Model):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.capsule = anysma.Capsule(prototype_distribution=3).add(
                    [
                        InputModule(
                            signal_shape=(2, 2),
                            dissimilarity_initializer="zeros",
                            trainable=False,
                        ),
                        keras.layers.Dense(5),
                    ]
                )
                self.head = keras.layers.Dense(1)

            def call(self, inputs):
                signals, _ = self.capsule(inputs)
                return self.head(keras.ops.reshape(signals, (-1, 30)))

        model = Wrapper()
        self.assertShapeEqual(model(random((2, 4))), (2, 1))
        self.run_training_step(model, random((4, 4)))
        # Dense kernel and bias, head kernel and bias
        self.assertEqual(len(model.trainable_weights), 4)

    def test_module_input_and_output(self):
        capsule = self._capsule()
        data = random((5, 4))
        capsule(data)
        scale_input = capsule.get_module_input("scale", data, batch_size=2)
        self.assertEqual(scale_input[0].shape, (5, 3, 2, 5))
        scale_output = capsule.get_module_output(capsule.get_module("scale"), data)
        self.assertAllClose(scale_output[0], scale_input[0])
        with self.assertRaisesRegex(ValueError, "is not part of capsule"):
            capsule.get_module_input(keras.layers.Dense(2), data)

    def test_summary_and_count_params(self):
        capsule = self._capsule()
        capsule(random((1, 4)))
        lines = []
        capsule.summary(print_fn=lines.append)
        self.assertIn("signal_dense (Dense)", lines[0])
        self.assertIn("prototypes: 3, capsules: 3", lines[0])
        self.assertEqual(capsule.count_params(), 2 + 5 * 2 + 5 + 1)


class InputModuleTest(TestCase):
    def test_basics(self):
        self.run_layer_test(
            InputModule,
            {
                "signal_shape": (-1, 2),
                "dissimilarity_initializer": "zeros",
                "prototype_distribution": (2, 3),
            },
            random((4, 6)),
            expected_output_shape=((4, 3, 3, 2), (4, 6, 3)),
            expected_num_trainable_weights=1,
        )

    def test_tuple_input(self):
        signals, dissimilarities = random((2, 3, 4)), np.abs(random((2, 3), 1))
        self.run_layer_test(
            InputModule,
            {"signal_shape": 4, "prototype_distribution": [1, 2]},
            (signals, dissimilarities),
            expected_output_shape=((2, 2, 3, 4), (2, 3, 3)),
            expected_num_trainable_weights=0,
        )
        module = InputModule(signal_shape=4, prototype_distribution=[1, 2])
        out_signals, out_dissimilarities = module((signals, dissimilarities))
        self.assertAllClose(out_signals, np.repeat(signals[:, None], 2, axis=1))
        self.assertAllClose(
            out_dissimilarities, np.repeat(dissimilarities[:, None], 3, axis=1)
        )

    def test_signal_shape_forms(self):
        data = random((2, 12))
        for signal_shape, expected in [
            (3, (4, 3)),
            ((-1, 2, 3), (2, 2, 3)),
            ((2, -1), (2, 6)),
            ((1, 12), (1, 12)),
        ]:
            module = InputModule(
                signal_shape=signal_shape,
                dissimilarity_initializer="zeros",
                prototype_distribution=1,
            )
            signals, dissimilarities = module(data)
            self.assertShapeEqual(signals, (2, 1) + expected)
            self.assertShapeEqual(dissimilarities, (2, 1, expected[0]))

    def test_invalid_signal_shape(self):
        data = random((2, 12))
        for signal_shape in ((5, -1), (-1, -1), (0, 12), 5, "12"):
            module = InputModule(
                signal_shape=signal_shape,
                dissimilarity_initializer="zeros",
                prototype_distribution=1,
            )
            with self.assertRaisesRegex(ValueError, "signal_shape"):
                module(data)

    def test_missing_dissimilarities(self):
        module = InputModule(signal_shape=(1, -1), prototype_distribution=1)
        with self.assertRaisesRegex(ValueError, "dissimilarity_initializer=None"):
            module(random((2, 3)))

    def test_missing_distribution(self):
        module = InputModule(signal_shape=(1, -1), dissimilarity_initializer="zeros")
        with self.assertRaisesRegex(ValueError, "needs a `prototype_distribution`"):
            module(random((2, 3)))

    def test_dissimilarity_channel_mismatch(self):
        module = InputModule(signal_shape=(3, -1), prototype_distribution=1)
        with self.assertRaisesRegex(ValueError, "one value per channel"):
            module((random((2, 6)), random((2, 2))))

    def test_original_argument_aliases(self):
        module = InputModule(init_diss_initializer="zeros", prototype_distribution=1)
        self.assertIsNotNone(module.dissimilarity_initializer)


class OutputModuleTest(TestCase):
    def test_basics(self):
        self.run_layer_test(
            OutputModule,
            {"squeeze_capsule_dim": True},
            (random((2, 1, 4)), random((2, 1))),
            expected_output_shape=((2, 4), (2,)),
            run_training_check=False,
        )

    def test_checks(self):
        with self.assertRaisesRegex(ValueError, "needs exactly one capsule"):
            OutputModule(squeeze_capsule_dim=True)((random((2, 3, 4)), random((2, 3))))
        with self.assertRaisesRegex(ValueError, "Received: shapes"):
            OutputModule()((random((2, 3, 4)), random((2, 2))))


class SplitModuleTest(TestCase):
    def test_basics(self):
        from anysma.modules import SplitModule

        data = random((2, 3, 3, 5))
        self.run_layer_test(
            SplitModule,
            {},
            data,
            expected_output_shape=((2, 3, 3, 4), (2, 3, 3, 1)),
            run_training_check=False,
        )
        signals, dissimilarities = SplitModule(axis=1, index=1)(data)
        self.assertAllClose(signals, data[:, :1])
        self.assertAllClose(dissimilarities, data[:, 1:])
        with self.assertRaisesRegex(ValueError, "Received: index=5"):
            SplitModule(index=5)(data)
        with self.assertRaisesRegex(ValueError, "Received: axis=0"):
            SplitModule(axis=0)(data)


class CompositionTest(TestCase):
    def test_conv_trunk_capsule_and_dense_head(self):
        from anysma.modules import Classification
        from anysma.modules import GibbsRouting
        from anysma.modules import MinkowskiDistance
        from anysma.modules import SplitModule

        images = keras.Input((6, 6, 1))
        features = keras.layers.Conv2D(5, 3, activation="relu", name="trunk")(images)
        # 4 channels of signals and 1 of dissimilarities per position.
        capsule = anysma.Capsule(prototype_distribution=3).add(
            [
                SplitModule(),
                InputModule(signal_shape=(-1, 4)),
                MinkowskiDistance(),
                GibbsRouting(trainable=False),
                Classification(name="capsule_probabilities"),
            ]
        )
        signals, _, probabilities = capsule(features)
        head = keras.layers.Dense(2, activation="softmax", name="head")(
            keras.layers.Flatten()(signals)
        )
        model = keras.Model(images, [probabilities, head])
        self.assertIs(model.get_layer("trunk"), model.layers[1])
        data = random((4, 6, 6, 1))
        outputs = model.predict(data, verbose=0)
        self.assertEqual(outputs[0].shape, (4, 3))
        self.assertEqual(outputs[1].shape, (4, 2))
        self.assertAllClose(outputs[0].sum(axis=1), np.ones(4), atol=1e-5)
        self.run_training_step(model, data)
        self.run_model_saving_test(model, data)

    def test_feature_maps_of_any_size(self):
        from anysma.modules import Classification
        from anysma.modules import GibbsRouting
        from anysma.modules import MinkowskiDistance
        from anysma.modules import SplitModule

        images = keras.Input((None, None, 1))
        features = keras.layers.Conv2D(5, 3, padding="same")(images)
        capsule = anysma.Capsule(prototype_distribution=3).add(
            [
                SplitModule(),
                InputModule(signal_shape=(-1, 4)),
                MinkowskiDistance(),
                GibbsRouting(trainable=False),
                Classification(),
            ]
        )
        model = keras.Model(images, capsule(features)[2])
        small, large = random((2, 6, 6, 1)), random((2, 9, 7, 1), 1)
        self.assertEqual(model.predict(small, verbose=0).shape, (2, 3))
        self.assertEqual(model.predict(large, verbose=0).shape, (2, 3))
        self.run_model_saving_test(model, large)
        with self.assertRaisesRegex(ValueError, r"of the form \(-1, \*atom_shape\)"):
            InputModule(signal_shape=(4, -1), prototype_distribution=1)(
                (keras.Input((None, 4)), keras.Input((None,)))
            )
