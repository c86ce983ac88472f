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


class AugmentedStream(keras.utils.PyDataset):
    """The user's stream of `(images, one-hot labels)`, augmented and packed.

    The stream counterpart of `AugmentedBatches`: batch `index` of `source`
    is augmented with a generator seeded by `(seed, epoch, index)` (the same
    augmentation for the same batch and epoch, also with several workers)
    and packed. The source's `on_epoch_begin` and `on_epoch_end` are called
    at every epoch, and its `workers` and `max_queue_size` are kept. The
    workers are threads, also where the source asks for processes: the
    augmentation may run backend operations, which must not run in a
    forked process (JAX deadlocks there).

    Args:
        source: A `keras.utils.PyDataset` of `(images, one-hot labels)`.
        augment: Function `(images, rng) -> images`, or `None`.
        pack: Function `(augmented, original, labels) -> (inputs, targets)`
            with integer `labels`; defaults to `(augmented, one-hot labels)`.
        seed: Seed of the augmentation.
    """

    def __init__(self, source, augment=None, pack=None, seed=0):
        super().__init__(
            workers=source.workers,
            use_multiprocessing=False,
            max_queue_size=source.max_queue_size,
        )
        self.source = source
        self.augment = augment
        self.pack = pack
        self.seed = seed
        self._epoch = 0

    def __len__(self):
        return len(self.source)

    def __getitem__(self, index):
        original, onehot = self.source[index][:2]
        original = np.asarray(original)
        onehot = np.asarray(onehot)
        augmented = original
        if self.augment is not None:
            rng = np.random.default_rng((self.seed, self._epoch, index))
            augmented = self.augment(original, rng)
        if self.pack is None:
            return augmented, onehot
        return self.pack(augmented, original, np.argmax(onehot, axis=-1))

    def on_epoch_begin(self):
        self.source.on_epoch_begin()

    def on_epoch_end(self):
        self._epoch += 1
        self.source.on_epoch_end()


def training_batches(train, num_classes, batch_size, augment, pack=None, seed=0):
    """The augmented training batches of an experiment.

    Args:
        train: `(images, integer labels)` arrays (shuffled every epoch by
            `AugmentedBatches`), or the user's `keras.utils.PyDataset` of
            `(images, one-hot labels)` (see `AugmentedStream`).
        num_classes: The number of classes.
        batch_size: Samples per batch of arrays.
        augment: Function `(images, rng) -> images`, or `None`.
        pack: Function `(augmented, original, integer labels) -> (inputs,
            targets)`; defaults to `(augmented, one-hot labels)`.
        seed: Seed of the shuffling and the augmentation.

    Returns:
        A `keras.utils.PyDataset`.
    """
    if isinstance(train, keras.utils.PyDataset):
        return AugmentedStream(train, augment=augment, pack=pack, seed=seed)
    if pack is None:

        def pack(augmented, original, labels):
            del original
            return augmented, keras.utils.to_categorical(labels, num_classes)

    images, labels = train
    return AugmentedBatches(
        images, labels, batch_size, augment=augment, pack=pack, seed=seed
    )


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

    Every random draw comes from the `rng` of the call (a seed per layer
    and batch), not from the layers' own seed generators: the result is a
    function of the batch and `rng` only, whichever worker thread runs it.

    Args:
        layers: Keras image preprocessing layers (`RandomTranslation`,
            `RandomRotation`, `RandomFlip`, ...).
    """

    def augment(images, rng):
        outputs = keras.ops.convert_to_tensor(images)
        for layer in layers:
            seed = int(rng.integers(2**31 - 1))
            transformation = layer.get_random_transformation(
                outputs, training=True, seed=seed
            )
            outputs = layer.transform_images(outputs, transformation, training=True)
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
