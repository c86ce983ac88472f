"""Code written for the 2018 anysma: it runs, or fails saying what to change.

Each test is a snippet in the original's style (dict signals, old keyword
arguments, old names) next to what anysma does with it.
"""

import re
import warnings

import keras
import numpy as np
import pytest

import anysma
from anysma import losses
from anysma.modules import Classification
from anysma.modules import GibbsRouting
from anysma.modules import InputModule
from anysma.modules import MinkowskiDistance
from anysma.modules import NearestCompetition
from anysma.modules import OutputModule
from anysma.modules import SqueezeRouting
from anysma.probability_transformations import flip
from anysma.utils import dict_to_list
from anysma.utils import equal_shape
from anysma.utils import list_to_dict
from anysma.utils import mixed_shape


def test_dict_signals_enter_a_capsule_that_starts_with_measuring():
    # The original passed `{0: signals, 1: dissimilarities}` between capsules.
    capsule = anysma.Capsule(prototype_distribution=(1, 3))
    capsule.add(
        [MinkowskiDistance(linear_factor=None), GibbsRouting(), Classification()]
    )
    signals = keras.Input((1, 5, 4))
    dissimilarities = keras.Input((3, 5))
    outputs = capsule(list_to_dict([signals, dissimilarities]))
    assert [tuple(output.shape) for output in outputs] == [
        (None, 3, 4),
        (None, 3),
        (None, 3),
    ]
    # Eagerly, the dict and the tuple give the same numbers, also with the
    # string keys that Keras 3 makes of integer keys in `.keras` files.
    values = (
        np.random.RandomState(0).rand(2, 1, 5, 4).astype("float32"),
        np.random.RandomState(1).rand(2, 3, 5).astype("float32"),
    )
    expected = capsule(values)
    for signal in (list_to_dict(values), {"0": values[0], "1": values[1]}):
        for got, want in zip(capsule(signal), expected):
            np.testing.assert_allclose(
                keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want)
            )
    # A module on its own takes the dict too; other dicts are not signals.
    routed = GibbsRouting()(list_to_dict([keras.Input((3, 5, 4)), keras.Input((3, 5))]))
    assert tuple(routed[1].shape) == (None, 3)
    assert dict_to_list(list_to_dict(["a", "b"])) == ["a", "b"]


def test_original_keyword_arguments_warn_and_say_what_to_write():
    cases = [
        (lambda: InputModule(input_to_dict=True), "input_to_dict"),
        (lambda: OutputModule(output_to_list=True), "output_to_list"),
        (lambda: MinkowskiDistance(need_capsule_params=True), "need_capsule_params"),
        (lambda: SqueezeRouting(module_input=True), "module_input"),
        (lambda: NearestCompetition(module_output=False), "module_output"),
    ]
    for make, keyword in cases:
        with pytest.warns(DeprecationWarning, match=f"Remove `{keyword}=") as record:
            module = make()
        assert isinstance(module, anysma.capsule.Module)
        # The warning points at the caller's line, not into anysma.
        assert record[0].filename == __file__, record[0].filename
    # Unknown arguments still fail as in Keras.
    with pytest.raises(ValueError, match="not_an_argument"):
        InputModule(not_an_argument=1)


def test_capsule_delegates_input_and_output_and_keeps_old_names():
    capsule = anysma.Capsule(prototype_distribution=(2, 3))
    capsule.add(
        [
            InputModule(signal_shape=(1, 4), dissimilarity_initializer="zeros"),
            MinkowskiDistance(linear_factor=None, squared_dissimilarity=True),
            SqueezeRouting(),
            NearestCompetition(),
            Classification(probability_transformation="flip", name="lvq"),
        ]
    )
    with pytest.raises(ValueError, match="call it on `keras.Input`"):
        capsule.output  # noqa: B018
    inputs = keras.Input((4,))
    outputs = capsule(inputs)
    assert capsule.input is inputs
    assert capsule.output[2] is outputs[2]
    assert capsule.output_shape == [(None, 3, 4), (None, 3), (None, 3)]
    assert capsule.proto_distrib == [2, 2, 2]
    lines = []
    capsule.summary(print_fn=lines.append)
    text = "\n".join(lines)
    for column in ("Module (type)", "Owner", "Param #", "Called at pos."):
        assert column in text
    assert re.search(r"lvq \(Classification\)\s+capsule\S*\s+0\s+4", text), text


def test_keras_names_are_reachable_through_anysma():
    # The original started these modules with `from keras.<area> import *`.
    assert (
        anysma.losses.categorical_crossentropy is keras.losses.categorical_crossentropy
    )
    assert anysma.constraints.NonNeg is keras.constraints.NonNeg
    assert anysma.regularizers.L2 is keras.regularizers.L2
    assert anysma.datasets.cifar100 is keras.datasets.cifar100
    # anysma's own names win where both exist.
    assert anysma.datasets.fashion_mnist.__name__ == "anysma.datasets.fashion_mnist"
    with pytest.raises(AttributeError, match="neither has 'keras.losses'"):
        anysma.losses.no_such_loss  # noqa: B018


@keras.saving.register_keras_serializable(package="original_api_test")
def doubled(mu):
    return 2.0 * mu


def test_glvq_loss_accepts_any_squashing_callable():
    y_true = np.array([[1.0, 0.0]])
    y_pred = flip(np.array([[1.0, 3.0]]))  # mu = -0.5
    for squash, expected in (
        (doubled, -1.0),
        ("tanh", np.tanh(-0.5)),
        (keras.activations.tanh, np.tanh(-0.5)),
        (lambda mu: mu - 1.0, -1.5),
    ):
        value = losses.glvq_loss(y_true, y_pred, squash_func=squash)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(value), [expected], 1e-5)
    # The class form saves registered functions and activations ...
    for squash in (doubled, "tanh", keras.activations.tanh):
        loss = losses.GlvqLoss(squash_func=squash)
        revived = losses.GlvqLoss.from_config(loss.get_config())
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(revived(y_true, y_pred)),
            keras.ops.convert_to_numpy(loss(y_true, y_pred)),
            rtol=1e-6,
        )
    # ... and trains with a lambda, but refuses to save it.
    loss = losses.GlvqLoss(squash_func=lambda mu: mu)
    assert float(keras.ops.convert_to_numpy(loss(y_true, y_pred))) < 0
    with pytest.raises(ValueError, match="lambda .* cannot be saved"):
        loss.get_config()
    with pytest.raises(ValueError, match="name of a Keras activation"):
        losses.GlvqLoss(squash_func="no_such_activation")


def test_shape_helpers():
    assert mixed_shape(np.zeros((2, 3))) == (2, 3)
    assert equal_shape((None, 3), [8, 3])
    assert not equal_shape((2, 3), (2, 4))
    assert not equal_shape((2, 3), (2, 3, 1))
    with pytest.raises(TypeError, match="`shape_b` must be a tuple"):
        equal_shape((2,), 2)


def test_warnings_are_not_errors_under_the_default_filters():
    # A 2018 script keeps running: the warnings are DeprecationWarnings only.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DeprecationWarning):
            InputModule(input_to_dict=True)
