import numpy as np

from anysma.datasets import tecator
from anysma.testing import TestCase


class TecatorTest(TestCase):
    def test_classification(self):
        (x_train, y_train), (x_test, y_test) = tecator.load_data()
        self.assertEqual(x_train.shape, (172, 100))
        self.assertEqual(x_test.shape, (43, 100))
        self.assertEqual(x_train.dtype, np.float32)
        labels = np.concatenate([y_train, y_test])
        self.assertEqual(set(labels.tolist()), {0, 1})
        self.assertEqual(int(labels.sum()), 77)

    def test_regression_targets(self):
        (_, y_train), (_, y_test) = tecator.load_data(task="regression")
        self.assertEqual(y_train.shape, (172, 3))
        spectra, endpoints = tecator.load_arrays()
        np.testing.assert_array_equal(y_test, endpoints[172:])
        # Water + fat + protein make up most of the meat.
        self.assertTrue(np.all(endpoints.sum(axis=1) > 90))

    def test_invalid_task(self):
        with self.assertRaisesRegex(ValueError, "Received: task='fat'"):
            tecator.load_data(task="fat")
