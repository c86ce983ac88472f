"""Batches with data augmentation for the experiments (a `keras.utils.PyDataset`).

The augmentation of each experiment is a function of a NumPy batch and a
`numpy.random.Generator`; Keras' preprocessing layers do the geometric work
where they match the original (CIFAR-10 shifts, rotations and flips), plain
NumPy the rest (exact integer pixel shifts, the PIL-style brightness and
contrast of smallNORB).
"""

import keras
import numpy as np


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled mini-batches of `(inputs, targets)` with fresh augmentation.

    Args:
        images: Array `(samples, *image_shape)`.
        labels: Array `(samples, ...)` of targets aligned with `images`.
        batch_size: Samples per batch.
        augment: Function `(images, rng) -> images` applied to every batch,
            or `None`.
        pack: Function `(augmented, original, labels) -> (inputs, targets)`
            that builds what the model is fed; defaults to
            `(augmented, labels)`.
        seed: Seed of the shuffling and the augmentation.
        shuffle: Reshuffle at the end of every epoch.
    """

    def __init__(
        self,
        images,
        labels,
        batch_size,
        augment=None,
        pack=None,
        seed=0,
        shuffle=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if len(images) != len(labels):
            raise ValueError(
                "`images` and `labels` must have the same number of samples. "
                f"Received: {len(images)} images and {len(labels)} labels"
            )
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1. Received: {batch_size}")
        self.images = images
        self.labels = labels
        self.batch_size = int(batch_size)
        self.augment = augment
        self.pack = pack or (lambda augmented, original, labels: (augmented, labels))
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(len(images))
        if shuffle:
            self._rng.shuffle(self._order)

    def __len__(self):
        return -(-len(self.images) // self.batch_size)

    def __getitem__(self, index):
        rows = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        original = self.images[rows]
        augmented = (
            original if self.augment is None else self.augment(original, self._rng)
        )
        return self.pack(augmented, original, self.labels[rows])

    def on_epoch_end(self):
        if self.shuffle:
            self._rng.shuffle(self._order)


def random_shift(images, rng, max_shift=2):
    """Shift every image by whole pixels, up to `max_shift` in each direction.

    The vacated border is zero. This is what the papers describe ("randomly
    shifted by up to two pixels"); the original passed `2` to Keras 2's
    `ImageDataGenerator`, which means the same only by a quirk of its
    integer handling.

    Args:
        images: `(batch, height, width, channels)`.
        rng: A `numpy.random.Generator`.
        max_shift: The largest shift, in pixels.
    """
    batch, height, width = images.shape[:3]
    padded = np.pad(
        images,
        [(0, 0), (max_shift, max_shift), (max_shift, max_shift)]
        + [(0, 0)] * (images.ndim - 3),
    )
    shifts = rng.integers(0, 2 * max_shift + 1, size=(batch, 2))
    return np.stack(
        [
            padded[index, top : top + height, left : left + width]
            for index, (top, left) in enumerate(shifts)
        ]
    )


def keras_augmentation(layers):
    """Augmentation function running Keras preprocessing `layers` in order.

    Args:
        layers: Keras preprocessing layers (`RandomTranslation`,
            `RandomRotation`, `RandomFlip`, ...), seeded by the caller.
    """

    def augment(images, rng):
        del rng  # The layers draw from their own seed generator.
        outputs = keras.ops.convert_to_tensor(images)
        for layer in layers:
            outputs = layer(outputs, training=True)
        return keras.ops.convert_to_numpy(outputs).astype(images.dtype)

    return augment


def brightness_contrast_crop(
    images, rng, crop_size, brightness=(0.2, 1.8), contrast=(0.3, 3.0)
):
    """smallNORB's augmentation: brightness, contrast, then a random crop.

    As PIL's `ImageEnhance` does it: brightness multiplies the pixels by a
    factor, contrast blends with the image's mean grey level
    (`mean + factor * (x - mean)`); both stereo channels get the same
    factors and results are clipped to [0, 1].

    Args:
        images: `(batch, height, width, channels)` in [0, 1].
        rng: A `numpy.random.Generator`.
        crop_size: `(height, width)` of the random crop.
        brightness: Range of the brightness factor.
        contrast: Range of the contrast factor.
    """
    batch, height, width = images.shape[:3]
    brightness_factor = rng.uniform(*brightness, size=(batch, 1, 1, 1))
    contrast_factor = rng.uniform(*contrast, size=(batch, 1, 1, 1))
    images = np.clip(images * brightness_factor, 0.0, 1.0)
    mean = images.mean(axis=(1, 2), keepdims=True)
    images = np.clip(mean + contrast_factor * (images - mean), 0.0, 1.0)
    crop_height, crop_width = crop_size
    tops = rng.integers(0, height - crop_height + 1, size=batch)
    lefts = rng.integers(0, width - crop_width + 1, size=batch)
    return np.stack(
        [
            images[index, top : top + crop_height, left : left + crop_width]
            for index, (top, left) in enumerate(zip(tops, lefts))
        ]
    ).astype("float32")


def centre_crop(images, crop_size):
    """The central `crop_size = (height, width)` window of every image."""
    height, width = images.shape[1:3]
    top = (height - crop_size[0]) // 2
    left = (width - crop_size[1]) // 2
    return images[:, top : top + crop_size[0], left : left + crop_size[1]]
