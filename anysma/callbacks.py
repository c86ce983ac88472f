"""Training callbacks.

The original anysma shipped a TensorFlow-1 `TensorBoard` variant here; use
`keras.callbacks.TensorBoard` instead.
"""

import numbers

import keras


def linear_margin_schedule(num_epochs, initial_margin=0.2, final_margin=0.9):
    """A schedule that moves the margin linearly over `num_epochs` epochs.

    The defaults are Hinton et al.'s spread-loss schedule (0.2 -> 0.9). Epoch
    0 gets `initial_margin`, epoch `num_epochs - 1` and all later epochs get
    `final_margin`.

    Args:
        num_epochs: Number of epochs of the ramp, an integer >= 1.
        initial_margin: Margin of the first epoch, >= 0.
        final_margin: Margin from epoch `num_epochs - 1` on, >= 0.

    Returns:
        A function `epoch -> margin` for `SpreadLossMarginScheduler`.

    Example:

    >>> schedule = linear_margin_schedule(8)
    >>> [round(schedule(epoch), 2) for epoch in (0, 7, 20)]
    [0.2, 0.9, 0.9]

    Reference:
        Hinton, Sabour and Frosst, "Matrix capsules with EM routing",
        ICLR 2018.
    """
    if (
        isinstance(num_epochs, bool)
        or not isinstance(num_epochs, numbers.Integral)
        or num_epochs < 1
    ):
        raise ValueError(
            f"`num_epochs` must be an integer >= 1. Received: num_epochs={num_epochs!r}"
        )
    for name, value in (
        ("initial_margin", initial_margin),
        ("final_margin", final_margin),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not value >= 0
        ):
            raise ValueError(
                f"`{name}` must be a number >= 0. Received: {name}={value!r}"
            )
    initial_margin, final_margin = float(initial_margin), float(final_margin)
    # With one epoch there is no ramp: the final margin applies at once.
    steps = max(int(num_epochs) - 1, 1)

    def schedule(epoch):
        fraction = min(max(epoch, 0) / steps, 1.0) if num_epochs > 1 else 1.0
        # Interpolated this way, the end points are reproduced exactly.
        return (1.0 - fraction) * initial_margin + fraction * final_margin

    return schedule


class SpreadLossMarginScheduler(keras.callbacks.Callback):
    """Set the margin of a spread loss at the start of every epoch.

    Hinton et al. start the spread loss with a small margin and increase it
    during training. Under `jit` (the default of JAX and TensorFlow) the
    margin is a constant baked into the compiled training step, so assigning
    `loss.margin` alone has no effect. This callback therefore rebuilds the
    training and evaluation functions whenever the margin changes (once per
    epoch at most), which costs one retrace.

    The new margin is logged as `"margin"` at the end of each epoch.

    Args:
        loss: The loss instance the model was compiled with: a
            `anysma.losses.SpreadLoss`, or any loss with a `margin`
            attribute that its `call` reads.
        schedule: A function `epoch -> margin` (epochs counted from 0), e.g.
            `linear_margin_schedule(num_epochs)`.
        verbose: If > 0, print the margin whenever it changes.

    Example:

    >>> import anysma
    >>> loss = anysma.losses.SpreadLoss()
    >>> scheduler = SpreadLossMarginScheduler(loss, linear_margin_schedule(10))
    >>> # model.compile(loss=loss, ...); model.fit(..., callbacks=[scheduler])
    """

    def __init__(self, loss, schedule, verbose=0):
        super().__init__()
        if not hasattr(loss, "margin"):
            raise TypeError(
                "`loss` must be a loss instance with a `margin` attribute, e.g. "
                f"`anysma.losses.SpreadLoss()`. Received: loss={loss!r}"
            )
        if not callable(schedule):
            raise TypeError(
                "`schedule` must be a function `epoch -> margin`. "
                f"Received: schedule={schedule!r}"
            )
        self.loss = loss
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        margin = self.schedule(epoch)
        if isinstance(margin, bool) or not isinstance(margin, numbers.Real):
            raise ValueError(
                "`schedule` must return a number. Received: "
                f"schedule({epoch})={margin!r}"
            )
        margin = float(margin)
        if margin == self.loss.margin:
            return
        self.loss.margin = margin
        # The compiled step functions captured the old margin as a constant.
        self.model.make_train_function(force=True)
        self.model.make_test_function(force=True)
        if self.verbose > 0:
            print(
                f"\nEpoch {epoch + 1}: SpreadLossMarginScheduler sets margin={margin}."
            )

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["margin"] = float(self.loss.margin)


__all__ = ["SpreadLossMarginScheduler", "linear_margin_schedule"]
