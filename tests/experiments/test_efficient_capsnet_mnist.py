"""The Efficient-CapsNet experiment's own pieces: shifts and the schedule."""

import numpy as np
import pytest

from anysma.experiments import efficient_capsnet_mnist as experiment


def digit_images():
    images = np.zeros((3, 28, 28, 1), dtype="float32")
    images[0, 10:18, 3:9] = 1.0  # close to the left border
    images[1, 20:27, 12:20] = 0.5  # close to the bottom border
    return images  # images[2] is blank


def test_margin_shift_keeps_the_digit_inside_the_frame():
    images = digit_images()
    rng = np.random.default_rng(0)
    moved = set()
    for _ in range(50):
        shifted = experiment.margin_shift(images, rng)
        assert shifted.shape == images.shape
        # Nothing wraps around or falls off: the same pixels, moved.
        np.testing.assert_allclose(shifted.sum(axis=(1, 2, 3)), images.sum((1, 2, 3)))
        np.testing.assert_array_equal(shifted[2], images[2])
        rows, cols = np.nonzero(shifted[0, ..., 0])
        assert rows.max() - rows.min() == 7 and cols.max() - cols.min() == 5
        moved.add((rows.min(), cols.min()))
    # The digit moves in both directions and by different amounts.
    assert len(moved) > 3
    assert min(col for _, col in moved) < 3 < max(col for _, col in moved)


def test_learning_rate_schedule_decays_per_epoch_with_a_floor():
    schedule = experiment.learning_rate_schedule(5e-4, 0.97)
    assert schedule(0) == pytest.approx(5e-4)
    assert schedule(10, 1.0) == pytest.approx(5e-4 * 0.97**10)
    assert schedule(149) == pytest.approx(experiment.MIN_LEARNING_RATE)
    # A learning rate below the floor is never raised.
    assert experiment.learning_rate_schedule(1e-5, 0.9)(3) == pytest.approx(1e-5)
    with pytest.raises(ValueError, match="lr_decay"):
        experiment.learning_rate_schedule(5e-4, 1.5)


def test_flags_default_to_the_official_configuration():
    args = experiment.build_parser().parse_args([])
    assert (args.epochs, args.batch_size, args.lr) == (150, 16, 5e-4)
    assert (args.lr_decay, args.lam_recon) == (0.97, 0.392)
