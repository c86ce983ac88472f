"""Worker: capsule-network training speed and peak memory, one backend.

Run by `run.py` in a fresh process (so the peak RSS belongs to one
configuration) with `KERAS_BACKEND` set. Modes:

- `train`: CapsNet (margin loss + 0.392 x reconstruction MSE, Adam) or the
  LVQ-capsule network (generalized KL divergence, Adam) on random images of
  `image_shape`, `implementation` = `"anysma"` (`anysma.models`) or
  `"broadcast"` (`_broadcast_models`, the same layers written the direct
  way). `warmup_steps` `train_on_batch` calls (tracing/compilation), then
  `steps` timed ones.
- `layer_memory`: one LVQ-capsule layer alone (input dissimilarities,
  tangent distance, Gibbs routing) on `(batch, channels, dim)` signals: the
  memory of measuring + routing as the vector dimension or the number of
  capsules grows.

Both report the peak RSS of the process and `peak_delta_bytes`, its growth
over the RSS just before the first training step (model, optimizer and data
already allocated).
"""

import inspect
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _protocol  # noqa: E402
import numpy as np  # noqa: E402


def _capsnet(implementation, config):
    import keras
    from _broadcast_models import broadcast_capsnet

    import anysma

    image_shape = tuple(config["image_shape"])
    kwargs = config.get("model_kwargs", {})
    if implementation == "anysma":
        model = anysma.models.CapsNet(image_shape=image_shape, **kwargs)
        margin = anysma.losses.MarginLoss()
    else:
        model = broadcast_capsnet(image_shape, **kwargs)
        margin = anysma.losses.MarginLoss()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss={"probabilities": margin, "reconstruction": "mse"},
        loss_weights={"probabilities": 1.0, "reconstruction": 0.392},
    )
    num_classes = kwargs.get("num_classes", 10)
    rng = np.random.default_rng(0)
    batch = config["batch_size"]
    images = rng.random((batch,) + image_shape).astype("float32")
    labels = np.eye(num_classes, dtype="float32")[rng.integers(0, num_classes, batch)]
    return model, (
        {"images": images, "labels": labels},
        {"probabilities": labels, "reconstruction": images},
    )


def _lvq_capsule_network(implementation, config):
    import keras
    from _broadcast_models import broadcast_lvq_capsule_network

    import anysma

    image_shape = tuple(config["image_shape"])
    kwargs = config.get("model_kwargs", {})
    if implementation == "anysma":
        model = anysma.models.LVQCapsuleNetwork(image_shape=image_shape, **kwargs)
    else:
        model = broadcast_lvq_capsule_network(image_shape, **kwargs)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=anysma.losses.GeneralizedKullbackLeiblerDivergence(),
    )
    num_classes = kwargs.get("num_classes", 10)
    rng = np.random.default_rng(0)
    batch = config["batch_size"]
    images = rng.random((batch,) + image_shape).astype("float32")
    labels = np.eye(num_classes, dtype="float32")[rng.integers(0, num_classes, batch)]
    return model, (images, labels)


def _anysma_measuring_routing(config):
    """One anysma capsule layer: InputModule -> TangentDistance -> GibbsRouting."""
    import keras

    import anysma
    from anysma.modules import GibbsRouting
    from anysma.modules import InputModule
    from anysma.modules import TangentDistance

    channels, dim = config["channels"], config["dim"]
    input_kwargs = {"signal_shape": (channels, dim)}
    # Shared (untiled) signals where the InputModule offers them.
    if "sparse_signal" in inspect.signature(InputModule).parameters:
        input_kwargs["sparse_signal"] = True
    capsule = anysma.Capsule(prototype_distribution=(1, config["capsules"]))
    capsule.add(
        [
            InputModule(**input_kwargs),
            TangentDistance(
                projected_atom_shape=config["subspace_dim"], linear_factor=0.5
            ),
            GibbsRouting(trainable=False),
        ]
    )
    signals = keras.Input(shape=(channels, dim), name="signals")
    dissimilarities = keras.Input(shape=(channels,), name="dissimilarities")
    outputs = capsule((signals, dissimilarities))
    return keras.Model([signals, dissimilarities], outputs[1]), input_kwargs


def _layer_memory_model(implementation, config):
    import keras
    from _broadcast_models import broadcast_measuring_routing

    if implementation == "anysma":
        model, options = _anysma_measuring_routing(config)
    else:
        model = broadcast_measuring_routing(
            config["channels"],
            config["dim"],
            config["capsules"],
            config["subspace_dim"],
        )
        options = {}
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    rng = np.random.default_rng(0)
    batch, channels = config["batch_size"], config["channels"]
    signals = rng.standard_normal((batch, channels, config["dim"])).astype("float32")
    dissimilarities = rng.random((batch, channels)).astype("float32")
    targets = np.zeros((batch, config["capsules"]), dtype="float32")
    return model, ([signals, dissimilarities], targets), options


def main(config):
    import keras

    keras.utils.set_random_seed(0)
    implementation = config["implementation"]
    if implementation not in ("anysma", "broadcast"):
        raise ValueError(f"unknown implementation {implementation!r}")
    options = {}
    if config["mode"] == "layer_memory":
        model, (x, y), options = _layer_memory_model(implementation, config)
    elif config["model"] == "capsnet":
        model, (x, y) = _capsnet(implementation, config)
    elif config["model"] == "lvq_capsule_network":
        model, (x, y) = _lvq_capsule_network(implementation, config)
    else:
        raise ValueError(f"unknown model {config['model']!r}")
    rss_before = _protocol.current_rss_bytes()
    for _ in range(config.get("warmup_steps", 1)):
        model.train_on_batch(x, y)
    times = []
    for _ in range(config.get("steps", 3)):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    peak = _protocol.peak_rss_bytes()
    step = float(np.median(times)) if times else None
    return {
        "library": "anysma" if implementation == "anysma" else "broadcast baseline",
        "backend": keras.backend.backend(),
        "implementation": implementation,
        "options": {
            key: value for key, value in options.items() if key != "signal_shape"
        },
        "parameters": int(model.count_params()),
        "step_seconds": step,
        "samples_per_s": config["batch_size"] / step if step else None,
        "peak_rss_bytes": peak,
        "peak_delta_bytes": peak - rss_before,
    }


if __name__ == "__main__":
    sys.exit(_protocol.run_worker(main))
