"""ProtoTorch (prototorch 0.7.6 + prototorch-models 0.7.1) benchmark runner.

Runs in the `prototorch` peer environment (see `setup_peers.py`), one task
per process, and prints one JSON result line. Tasks:

- `train`: GLVQ or GMLVQ on MNIST or Tecator (hold-out split), test
  accuracy every `eval_every` epochs (evaluation time left out).
- `cv`: fit time and accuracy of one model over the Tecator CV folds.

Settings follow ProtoTorch's own defaults and examples: Adam with the
library's default learning rate 0.01, shuffled mini-batches, float32,
`GLVQLoss` with identity transfer, class-mean initialization (`SMCI`);
GMLVQ with the full-rank identity-initialized Omega. Models are trained by
`pytorch_lightning.Trainer` (ProtoTorch models subclass its
`LightningModule`; `lightning.Trainer` rejects them) and evaluated with
`model.predict` (`trainer.test` fails on Lightning 2). Fit time includes the
`Trainer` construction.
"""

import logging
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _protocol  # noqa: E402
import numpy as np  # noqa: E402

warnings.filterwarnings("ignore")
logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
logging.getLogger("lightning").setLevel(logging.ERROR)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

MODELS = {
    "glvq": "GLVQ",
    "gmlvq": "GMLVQ",
    "grlvq": "GRLVQ",
    "rslvq": "RSLVQ",
    "lgmlvq": "LGMLVQ",
    "gtlvq": "GTLVQ",
}


def _versions():
    import importlib.metadata as metadata

    return {
        name: metadata.version(name)
        for name in ("prototorch", "prototorch-models", "torch", "pytorch-lightning")
    }


def _model(model_name, x_train, y_train, lr):
    import prototorch as pt
    import prototorch.models  # noqa: F401  (registers pt.models)
    import torch

    num_classes = int(y_train.max()) + 1
    data = (torch.tensor(x_train), torch.tensor(y_train))
    hparams = {
        "distribution": {"num_classes": num_classes, "per_class": 1},
        "lr": lr,
        "input_dim": x_train.shape[1],
        "latent_dim": x_train.shape[1],
    }
    kwargs = {"prototypes_initializer": pt.initializers.SMCI(data)}
    if model_name == "gtlvq":
        hparams["latent_dim"] = min(10, x_train.shape[1])
    return getattr(pt.models, MODELS[model_name])(hparams, **kwargs)


def _predict(model, x):
    import torch

    with torch.no_grad():
        return model.predict(torch.tensor(x)).numpy()


def _fit(model, x_train, y_train, epochs, batch_size, seed, callbacks=()):
    import pytorch_lightning as pl
    import torch

    generator = torch.Generator().manual_seed(seed)
    dataset = torch.utils.data.TensorDataset(
        torch.tensor(x_train), torch.tensor(y_train)
    )
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, generator=generator
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )
    trainer.fit(model, loader)


def train(config):
    import pytorch_lightning as pl

    pl.seed_everything(config.get("seed", 0), verbose=False)
    if config["data"] == "mnist":
        x_train, y_train, x_test, y_test = _protocol.load_mnist(
            config.get("n_train"), config.get("n_test")
        )
    else:
        x_train, y_train, x_test, y_test = (
            a.astype(np.float32) if a.dtype == np.float64 else a
            for a in _protocol.load_tecator_split()
        )
    model = _model(config["model"], x_train, y_train, config.get("learning_rate", 0.01))
    eval_every = config.get("eval_every", 1)
    curve = []
    state = {"eval_seconds": 0.0, "start": None}

    class EvaluateTest(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            epoch = trainer.current_epoch + 1
            if epoch % eval_every and epoch != config["epochs"]:
                return
            start = time.perf_counter()
            elapsed = start - state["start"] - state["eval_seconds"]
            pl_module.eval()
            acc = _protocol.accuracy(y_test, _predict(pl_module, x_test))
            pl_module.train()
            curve.append((epoch, elapsed, acc))
            state["eval_seconds"] += time.perf_counter() - start

    state["start"] = time.perf_counter()
    _fit(
        model,
        x_train,
        y_train,
        config["epochs"],
        config["batch_size"],
        config.get("seed", 0),
        callbacks=[EvaluateTest()],
    )
    fit_seconds = time.perf_counter() - state["start"] - state["eval_seconds"]
    target = config.get("target_accuracy")
    reached = [seconds for _, seconds, acc in curve if target and acc >= target]
    n_train = len(x_train)
    return {
        "library": "prototorch",
        "versions": _versions(),
        "n_train": n_train,
        "passes": config["epochs"],
        "fit_seconds": fit_seconds,
        "samples_per_s": config["epochs"] * n_train / fit_seconds,
        "test_accuracy": curve[-1][2],
        "target_accuracy": target,
        "time_to_target_s": reached[0] if reached else None,
        "accuracy_curve": curve,
    }


def cross_validate(config):
    import pytorch_lightning as pl

    fit_seconds, accuracies = [], []
    for x_train, y_train, x_test, y_test in _protocol.tecator_cv_splits():
        pl.seed_everything(config.get("seed", 0), verbose=False)
        x_train, x_test = x_train.astype(np.float32), x_test.astype(np.float32)
        model = _model(config["model"], x_train, y_train, config.get("lr", 0.01))
        start = time.perf_counter()
        _fit(
            model,
            x_train,
            y_train,
            config["epochs"],
            config["batch_size"],
            config.get("seed", 0),
        )
        fit_seconds.append(time.perf_counter() - start)
        model.eval()
        accuracies.append(_protocol.accuracy(y_test, _predict(model, x_test)))
    return {
        "library": "prototorch",
        "versions": _versions(),
        "fit_seconds_per_fold": fit_seconds,
        "fold_accuracies": accuracies,
    }


def main(config):
    if config.get("model") not in MODELS:
        raise _protocol.SkipBenchmark(
            f"ProtoTorch has no model {config.get('model')!r} in this benchmark"
        )
    return {"train": train, "cv": cross_validate}[config["task"]](config)


if __name__ == "__main__":
    sys.exit(_protocol.run_worker(main))
