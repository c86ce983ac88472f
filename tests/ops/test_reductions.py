import numpy as np
from keras import ops

from anysma.ops.reductions import selected_max
from anysma.ops.reductions import selected_min
from anysma.testing import TestCase
from anysma.testing.gradients import autodiff_gradient


class SelectedExtremumTest(TestCase):
    def test_values_match_numpy(self):
        values = np.random.RandomState(0).normal(size=(3, 4, 5)).astype("float32")
        for axis in (0, 1, -1, (0, 2), (1, -1), None):
            for keepdims in (False, True):
                with self.subTest(axis=axis, keepdims=keepdims):
                    self.assertAllClose(
                        selected_max(values, axis=axis, keepdims=keepdims),
                        np.max(values, axis=axis, keepdims=keepdims),
                    )
                    self.assertAllClose(
                        selected_min(values, axis=axis, keepdims=keepdims),
                        np.min(values, axis=axis, keepdims=keepdims),
                    )

    def test_gradient_goes_to_the_first_extremum_only(self):
        values = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, -1.0, 5.0, -1.0]])
        gradient_of_max = autodiff_gradient(
            lambda tensor: ops.sum(selected_max(tensor, axis=-1)), values
        )
        self.assertAllClose(gradient_of_max, [[0, 1, 0, 0], [0, 0, 1, 0]])
        gradient_of_min = autodiff_gradient(
            lambda tensor: ops.sum(selected_min(tensor, axis=-1)), values
        )
        self.assertAllClose(gradient_of_min, [[0, 0, 0, 1], [0, 1, 0, 0]])

    def test_gradient_over_several_axes_is_one_hot(self):
        values = np.random.RandomState(1).normal(size=(2, 3, 4))
        gradient = np.asarray(
            autodiff_gradient(
                lambda tensor: ops.sum(selected_max(tensor, axis=(1, 2))), values
            )
        )
        expected = (values == values.max(axis=(1, 2), keepdims=True)).astype(float)
        self.assertAllClose(gradient, expected)

    def test_infinite_entries_elsewhere_leave_value_and_gradient_finite(self):
        values = np.array([[1.0, np.inf, 2.0], [np.inf, -3.0, np.inf]], "float32")
        self.assertAllClose(selected_min(values, axis=-1), [1.0, -3.0])
        gradient = autodiff_gradient(
            lambda tensor: ops.sum(selected_min(tensor, axis=-1)), values
        )
        self.assertAllClose(gradient, [[1, 0, 0], [0, 1, 0]])

    def test_bad_axis(self):
        with self.assertRaisesRegex(ValueError, "axis"):
            selected_max(np.zeros((2, 3)), axis=2)
        with self.assertRaisesRegex(ValueError, "axis"):
            selected_min(np.zeros((2, 3)), axis=())
