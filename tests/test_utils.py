import re

import numpy as np

from anysma import utils
from anysma.testing import TestCase
from anysma.utils import dict_to_list
from anysma.utils import list_to_dict
from anysma.utils import prototype_index_tables


def reference_tables(prototypes_per_capsule):
    """The original's padded `_proto_extension`, built by plain loops."""
    rows, masks, capsule_extension, start = [], [], [], 0
    longest = max(prototypes_per_capsule)
    for capsule, count in enumerate(prototypes_per_capsule):
        indices = list(range(start, start + count))
        rows.append(indices + [indices[-1]] * (longest - count))
        masks.append([True] * count + [False] * (longest - count))
        capsule_extension += [capsule] * count
        start += count
    return rows, masks, capsule_extension


class PrototypeIndexTablesTest(TestCase):
    def check(self, distribution, prototypes_per_capsule):
        tables = prototype_index_tables(distribution)
        rows, masks, capsule_extension = reference_tables(prototypes_per_capsule)
        self.assertEqual(tables.prototypes_per_capsule, tuple(prototypes_per_capsule))
        self.assertEqual(tables.capsule_number, len(prototypes_per_capsule))
        self.assertEqual(tables.proto_number, sum(prototypes_per_capsule))
        self.assertEqual(
            tables.max_proto_number_in_capsule, max(prototypes_per_capsule)
        )
        self.assertEqual(tables.index_table.tolist(), rows)
        self.assertEqual(tables.valid_mask.tolist(), masks)
        self.assertEqual(tables.capsule_extension.tolist(), capsule_extension)
        self.assertEqual(
            tables.equally_distributed,
            tables.index_table.ravel().tolist() == list(range(tables.proto_number)),
        )
        self.assertTrue(np.issubdtype(tables.index_table.dtype, np.integer))
        self.assertEqual(tables.valid_mask.dtype, bool)
        return tables

    def test_int_means_one_prototype_per_capsule(self):
        tables = self.check(4, [1, 1, 1, 1])
        self.assertTrue(tables.equally_distributed)
        self.check(np.int64(2), [1, 1])

    def test_tuple_is_prototypes_then_capsules(self):
        tables = self.check((3, 2), [3, 3])
        # Capsule-major: capsule i owns prototypes [i * k, (i + 1) * k - 1].
        self.assertEqual(tables.index_table.tolist(), [[0, 1, 2], [3, 4, 5]])
        self.assertTrue(tables.equally_distributed)
        self.check((1, 1), [1])

    def test_list_and_unequal_distributions(self):
        tables = self.check([2, 1, 3], [2, 1, 3])
        self.assertFalse(tables.equally_distributed)
        self.assertEqual(tables.index_table.tolist(), [[0, 1, 1], [2, 2, 2], [3, 4, 5]])
        self.assertTrue(self.check([2, 2], [2, 2]).equally_distributed)
        self.check([5], [5])

    def test_invalid_distributions(self):
        invalid = (0, -2, 2.0, True, None, "3", [], [2, 0], [1, 2.5], (2,), (1, 2, 3))
        invalid += ((0, 3), (2, -1), {"k": 2})
        for distribution in invalid:
            with self.assertRaisesRegex(
                ValueError,
                r"`prototype_distribution` must be .*Received: "
                + re.escape(f"prototype_distribution={distribution!r}"),
            ):
                prototype_index_tables(distribution)

    def test_exported_names(self):
        for name in ("list_to_dict", "dict_to_list", "prototype_index_tables"):
            self.assertIn(name, utils.__all__)
            self.assertTrue(callable(getattr(utils, name)))


class SignalConversionTest(TestCase):
    def test_round_trip(self):
        signals, dissimilarities, probabilities = object(), object(), object()
        signal_dict = list_to_dict([signals, dissimilarities, probabilities])
        self.assertEqual(list(signal_dict), [0, 1, 2])
        self.assertIs(signal_dict[1], dissimilarities)
        self.assertEqual(
            dict_to_list(signal_dict), [signals, dissimilarities, probabilities]
        )
        self.assertEqual(list_to_dict((signals,)), {0: signals})

    def test_key_order_and_string_keys(self):
        self.assertEqual(dict_to_list({1: "d", 0: "s"}), ["s", "d"])
        # What Keras 3 makes of integer keys when it loads a `.keras` file.
        self.assertEqual(dict_to_list({"0": "s", "1": "d"}), ["s", "d"])

    def test_already_converted_inputs_pass_through(self):
        self.assertEqual(list_to_dict({0: "s"}), {0: "s"})
        self.assertEqual(dict_to_list(("s", "d")), ["s", "d"])

    def test_invalid_inputs(self):
        with self.assertRaisesRegex(ValueError, "`values` must be a list or tuple"):
            list_to_dict("signals")
        with self.assertRaisesRegex(
            ValueError, r"`signal_dict` must have the keys 0, \.\.\., n - 1"
        ):
            dict_to_list({0: "s", 2: "p"})
        with self.assertRaisesRegex(ValueError, r"Received: signal_dict keys="):
            dict_to_list({"signals": 1})
        with self.assertRaisesRegex(ValueError, "`signal_dict` must be a dict"):
            dict_to_list("signals")


class ValidationTest(TestCase):
    """The one message format: name, expectation, `Received: name=value`."""

    def test_check_int(self):
        from anysma.utils.validation import check_int

        self.assertEqual(check_int(np.int64(3), "units", minimum=1), 3)
        self.assertIsNone(check_int(None, "units", allow_none=True))
        for bad in (0, True, 1.0, "1", None):
            with self.assertRaisesRegex(
                ValueError, r"^`units` must be an int >= 1\. Received: units="
            ):
                check_int(bad, "units", minimum=1)
        with self.assertRaisesRegex(ValueError, r"an int in \[0, 9\]\. Received: d=10"):
            check_int(10, "d", minimum=0, maximum=9)

    def test_check_number(self):
        from anysma.utils.validation import check_number

        self.assertEqual(check_number(1, "beta", minimum=0), 1.0)
        self.assertEqual(
            check_number(float("inf"), "m", minimum=0, finite=False), float("inf")
        )
        for bad in (0, -1, float("nan"), float("inf"), True, "2"):
            with self.assertRaisesRegex(
                ValueError, r"^`beta` must be a finite number > 0\. Received: beta="
            ):
                check_number(bad, "beta", minimum=0, include_minimum=False)
        with self.assertRaisesRegex(
            ValueError, r"in \[0, 1\) \(why\)\. Received: rate=1"
        ):
            check_number(
                1, "rate", minimum=0, maximum=1, include_maximum=False, reason="(why)"
            )

    def test_check_bool_and_option(self):
        from anysma.utils.validation import check_bool
        from anysma.utils.validation import check_option

        self.assertIs(check_bool(False, "center"), False)
        with self.assertRaisesRegex(TypeError, r"`center` must be a bool\. Received"):
            check_bool(1, "center")
        self.assertEqual(check_option("min", "mode", ("max", "min")), "min")
        with self.assertRaisesRegex(
            ValueError, r"`mode` must be one of \['max', 'min'\]\. Received: mode='x'"
        ):
            check_option("x", "mode", ("max", "min"))
