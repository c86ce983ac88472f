import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from anysma.utils import data_parallel

WORKER = os.path.join(os.path.dirname(__file__), "data_parallel_worker.py")


@pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="keras.distribution runs on JAX"
)
def test_data_parallel_equals_one_device_on_indivisible_data():
    # 197 rows in batches of 32 over 4 virtual devices: Keras alone raises
    # jax's IndivisibleError for the last batch of 5.
    completed = subprocess.run(
        [sys.executable, WORKER],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, KERAS_BACKEND="jax"),
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    assert "multiple of the 4 devices" in results.pop("batch_size_error")
    assert set(results) == {
        "glvq",
        "gmlvq",
        "rslvq",
        "lvq_capsule_network",
        "glvq_prototype_shards",
    }
    # keras.distribution.ModelParallel split the prototypes over 2 devices;
    # the nearest prototype is still found across both halves.
    assert results["glvq_prototype_shards"]["prototype_shardings"] == [
        "P('model', None)"
    ]
    assert results["glvq"]["prototype_shardings"] == ["P(None, None)"]
    for case, difference in results.items():
        assert difference["weights"] < 1e-5, case
        assert difference["predictions"] < 1e-5, case
        assert difference["predictions_shape"][0] in (197, 21), case
        for name, value in difference["evaluate"].items():
            assert value < 1e-5, (case, name)
        for name, value in difference["validation"].items():
            assert value < 1e-5, (case, name)
    # The validation split of GLVQ (50 rows) does not divide by 4 either.
    assert set(results["glvq"]["validation"]) == {"val_loss", "val_accuracy", "val_auc"}


def test_without_a_distribution_every_batch_is_one_piece():
    assert data_parallel.batch_shards() == 1


def test_divisible_batches_repeat_an_indivisible_last_batch():
    x = np.arange(10.0)[:, None]
    y = np.arange(10)
    batches = data_parallel.DivisibleBatches(x, y, batch_size=4, shards=4)
    assert len(batches) == 3
    first_x, first_y = batches[0]
    np.testing.assert_array_equal(first_y, [0, 1, 2, 3])
    last_x, last_y = batches[2]
    # 2 rows over 4 devices: both rows twice, so every mean is unchanged.
    np.testing.assert_array_equal(last_y, [8, 9, 8, 9])
    np.testing.assert_array_equal(last_x[:, 0], [8.0, 9.0, 8.0, 9.0])
    # 3 rows over 4 devices: each row 4 times.
    batches = data_parallel.DivisibleBatches(
        x[:7], y[:7], np.ones(7), batch_size=4, shards=4
    )
    last = batches[1]
    assert len(last) == 3
    np.testing.assert_array_equal(np.sort(last[1]), np.repeat([4, 5, 6], 4))


def test_divisible_batches_shuffle_every_epoch_and_keep_every_row():
    x = np.arange(20.0)[:, None]
    batches = data_parallel.DivisibleBatches(
        x, batch_size=8, shards=2, shuffle=True, seed=0
    )

    def epoch():
        return np.concatenate([batches[i][0][:, 0] for i in range(len(batches))])

    first = epoch()
    np.testing.assert_array_equal(np.unique(first), np.arange(20.0))
    batches.on_epoch_end()
    second = epoch()
    np.testing.assert_array_equal(np.unique(second), np.arange(20.0))
    assert not np.array_equal(first, second)
    again = data_parallel.DivisibleBatches(
        x, batch_size=8, shards=2, shuffle=True, seed=0
    )
    # The same seed, the same first epoch.
    np.testing.assert_array_equal(again[0][0][:, 0], first[:8])


def test_batch_size_must_divide_by_the_devices():
    with pytest.raises(ValueError, match="multiple of the 4 devices.*batch_size=6"):
        data_parallel.DivisibleBatches(np.zeros((8, 2)), batch_size=6, shards=4)


def test_split_divisible():
    head, tail = data_parallel.split_divisible(197, 4)
    assert (head.stop, tail.start, tail.stop) == (196, 196, 197)
    head, tail = data_parallel.split_divisible(3, 4)
    assert (head.stop, tail.start) == (0, 0)


def test_class_weight_becomes_sample_weight():
    onehot = keras.utils.to_categorical([0, 2, 1, 2], 3)
    weights = data_parallel.class_weight_to_sample_weight(
        onehot, {0: 1.0, 1: 2.0, 2: 0.5}, sample_weight=[1.0, 1.0, 2.0, 4.0]
    )
    np.testing.assert_allclose(weights, [1.0, 0.5, 4.0, 2.0])
    weights = data_parallel.class_weight_to_sample_weight(
        np.array([1, 0]), {0: 3.0, 1: 1.0}
    )
    np.testing.assert_allclose(weights, [1.0, 3.0])
    with pytest.raises(ValueError, match=r"Missing: \[2\]"):
        data_parallel.class_weight_to_sample_weight(np.array([0, 2]), {0: 1.0})


def test_array_data_and_data_that_makes_its_own_batches():
    assert data_parallel.is_array_data(np.zeros((3, 2)))
    assert data_parallel.is_array_data({"a": np.zeros((3, 2)), "b": None})
    assert not data_parallel.is_array_data(iter([np.zeros((3, 2))]))
    assert not data_parallel.is_array_data(None)
    assert not data_parallel.is_array_data(np.float32(1.0))
