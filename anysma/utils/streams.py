"""Batches from a stream: `PyDataset`s, `tf.data`, data loaders, generators.

Keras' `fit` reads such streams itself; the passes of anysma that run outside
`fit` over the same data (k-means pre-training with `partial_fit`) read them
through `Batches`, which also knows whether the stream can be read twice.
"""

import keras
import numpy as np


class Batches:
    """A stream of batches that can be iterated, as NumPy arrays.

    Accepted sources:

    - a `keras.utils.PyDataset` (read by index, `len(source)` batches; a
      dataset without a length is refused);
    - anything iterable that restarts on every `iter()`: a list of batches,
      a `tf.data.Dataset`, a `torch.utils.data.DataLoader`;
    - a function without arguments that returns a new iterator each call;
    - an iterator such as a generator, which can be read only once.

    Every leaf of a batch comes out as a NumPy array (tensors of any backend
    are converted); the structure (a tuple `(x, y)`, a dict, ...) is kept.

    Args:
        source: The stream, as above.
        name: The argument name that error messages use.

    Example:

    >>> import numpy as np
    >>> batches = Batches([(np.zeros((2, 3)), np.ones(2))] * 2)
    >>> [x.shape for x, y in batches]
    [(2, 3), (2, 3)]
    >>> batches.reiterable
    True
    """

    def __init__(self, source, name="x"):
        self.name = name
        self._source = source
        self._consumed = False
        if isinstance(source, keras.utils.PyDataset):
            if source.num_batches is None:
                raise ValueError(
                    f"`{name}` is a PyDataset without a length (`num_batches` is "
                    "None), so it never ends; give it a `__len__`."
                )
            self.reiterable = True
        elif callable(source) and not hasattr(source, "__iter__"):
            self.reiterable = True
        elif hasattr(source, "__iter__"):
            self.reiterable = iter(source) is not source
        else:
            raise TypeError(
                f"`{name}` must be arrays, a keras.utils.PyDataset, a tf.data "
                "Dataset, a data loader, a generator or a function returning "
                f"an iterator of batches. Received: {type(source).__name__}"
            )

    def __iter__(self):
        source = self._source
        if isinstance(source, keras.utils.PyDataset):
            items = (source[index] for index in range(len(source)))
        elif callable(source) and not hasattr(source, "__iter__"):
            items = source()
        else:
            if not self.reiterable:
                if self._consumed:
                    raise ValueError(
                        f"`{self.name}` is an iterator (e.g. a generator) that was "
                        "already read to its end, and this needs a second pass "
                        "over the data. Pass a list of batches, a "
                        "keras.utils.PyDataset, a tf.data.Dataset or a function "
                        "that returns a new iterator."
                    )
                self._consumed = True
            items = iter(source)
        for batch in items:
            yield keras.tree.map_structure(_to_numpy, batch)


def _to_numpy(leaf):
    if leaf is None or isinstance(leaf, np.ndarray):
        return leaf
    try:
        return np.asarray(leaf)
    except (TypeError, ValueError, RuntimeError):
        # e.g. a tensor on an accelerator, which has no `__array__` there.
        return keras.ops.convert_to_numpy(leaf)
