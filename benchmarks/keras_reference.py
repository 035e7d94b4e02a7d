"""The author's clustering VAE in Keras 3 / TensorFlow: the reference for issues 4 and 5.

A port of ``vae_keras_cluster.py`` (bojone/vae; versions A, B and C, described in docs/reproduction.md) written for
Keras 3, outside the package on purpose: it shares no code with ``vaeclust_tutorial``, so it
checks the PyTorch implementation (seed spread of the purity) and times TensorFlow's CPU path
(seconds per epoch) on the same machine. It reads the IDX files that
``python -m vaeclust_tutorial prepare`` writes (no download).

Set up once (its own virtualenv; TensorFlow is not a dependency of the project)::

    python3 -m venv .venv-keras && .venv-keras/bin/pip install "tensorflow-cpu==2.21.*" scipy

Run, e.g. version B on MNIST, seed 1, 50 epochs, one thread::

    .venv-keras/bin/python benchmarks/keras_reference.py --config article-b --seed 1 \\
        --threads 1 --out results/keras/mnist-article-b-seed1.json

The JSON holds the per-epoch seconds and test purity and the final four scores. Each epoch
also records ``startup_seconds``, from the epoch's start to the end of its first batch: on the
2-core machine of the README, Keras often waits there 5-25 s with the CPU idle, in the creation
of the epoch's data iterator (``for ... in epoch_iterator`` of Keras' TensorFlow trainer), with
every thread setting tried; ``seconds_after_first_batch`` is the rest of the epoch, the training
itself.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time
from pathlib import Path

import numpy as np

CONFIGS = {  # version: (two convs per stage, activation, lambda, term 2 estimator)
    "article-a": (False, "relu", 5.0, "closed-form"),
    "article-b": (True, "leaky", 5.0, "closed-form"),
    "article-c": (True, "leaky", 2.5, "sample"),
}
FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


def read_idx(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(dataset: str, data_dir: Path):
    raw = data_dir / FOLDERS[dataset] / "raw"
    if not raw.is_dir():
        sys.exit(f"error: {raw} not found; run `python -m vaeclust_tutorial prepare` first "
                 f"(or pass --data-dir)")
    x_train = read_idx(raw / "train-images-idx3-ubyte").astype("float32")[..., None] / 255.0
    y_train = read_idx(raw / "train-labels-idx1-ubyte").astype(np.int64)
    x_test = read_idx(raw / "t10k-images-idx3-ubyte").astype("float32")[..., None] / 255.0
    y_test = read_idx(raw / "t10k-labels-idx1-ubyte").astype(np.int64)
    return x_train, y_train, x_test, y_test


def build(config: str, latent_dim: int = 20, k: int = 10, hidden: int = 256):
    import keras
    from keras import layers, ops

    double, act, lam, estimator = CONFIGS[config]

    def activation(h):
        return layers.LeakyReLU(0.2)(h) if act == "leaky" else layers.ReLU()(h)

    x = keras.Input((28, 28, 1))
    h, filters = x, 16
    for _ in range(2):
        filters *= 2
        h = activation(layers.Conv2D(filters, 3, strides=2, padding="same")(h))
        if double:
            h = activation(layers.Conv2D(filters, 3, strides=1, padding="same")(h))
    h = layers.Flatten()(h)
    encoder = keras.Model(x, [layers.Dense(latent_dim)(h), layers.Dense(latent_dim)(h)])

    z = keras.Input((latent_dim,))
    h = layers.Reshape((7, 7, 64))(layers.Dense(7 * 7 * 64)(z))
    for _ in range(2):
        if double:
            h = activation(layers.Conv2DTranspose(filters, 3, strides=1, padding="same")(h))
        h = activation(layers.Conv2DTranspose(filters, 3, strides=2, padding="same")(h))
        filters //= 2
    decoder = keras.Model(z, layers.Conv2DTranspose(1, 3, padding="same", activation="sigmoid")(h))

    z = keras.Input((latent_dim,))
    classifier = keras.Model(z, layers.Dense(k, activation="softmax")(layers.Dense(hidden, activation="relu")(z)))

    class ClusterVAE(keras.Model):
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder, self.classifier = encoder, decoder, classifier
            self.means = self.add_weight(shape=(k, latent_dim), initializer="zeros", name="means")
            self.seed_gen = keras.random.SeedGenerator()

        def loss_terms(self, x):
            mu, logvar = self.encoder(x)
            eps = keras.random.normal(ops.shape(mu), seed=self.seed_gen)
            z = mu + ops.exp(logvar / 2) * eps
            x_hat, y = self.decoder(z), self.classifier(z)
            rec = lam * ops.sum(0.5 * ops.mean((x - x_hat) ** 2, 0))
            mu3, lv3 = ops.expand_dims(mu, 1), ops.expand_dims(logvar, 1)
            if estimator == "closed-form":
                kl = -0.5 * (1 + lv3 - ops.square(mu3 - self.means[None]) - ops.exp(lv3))
            else:
                kl = -0.5 * (lv3 - ops.square(ops.expand_dims(z, 1) - self.means[None]))
            kl = ops.sum(ops.mean(ops.sum(ops.expand_dims(y, -1) * kl, 1), 0))
            cat = ops.sum(ops.mean(y * ops.log(y + 1e-7), 0))
            return rec + kl + cat

        def train_step(self, data):
            import tensorflow as tf
            with tf.GradientTape() as tape:
                loss = self.loss_terms(data)
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            return {"total": loss}  # "loss" is the compiled tracker's key (unused here)

        def call(self, x):
            return self.classifier(self.encoder(x)[0])

    model = ClusterVAE()
    model.compile(optimizer=keras.optimizers.Adam())  # Keras defaults: lr 1e-3, epsilon 1e-7
    return model


def clustering_scores(labels: np.ndarray, pred: np.ndarray, k: int) -> dict:
    """Purity, Hungarian accuracy, NMI, ARI from the contingency matrix (numpy + scipy only)."""
    from scipy.optimize import linear_sum_assignment
    from scipy.special import comb

    m = np.zeros((k, labels.max() + 1), np.int64)
    np.add.at(m, (pred, labels), 1)
    n = m.sum()
    rows, cols = linear_sum_assignment(m, maximize=True)
    pij, pi, pj = m / n, m.sum(1) / n, m.sum(0) / n
    nz = pij > 0
    mi = (pij[nz] * np.log(pij[nz] / np.outer(pi, pj)[nz])).sum()
    h = lambda p: -(p[p > 0] * np.log(p[p > 0])).sum()  # noqa: E731
    sum_ij, sum_i, sum_j = comb(m, 2).sum(), comb(m.sum(1), 2).sum(), comb(m.sum(0), 2).sum()
    expected = sum_i * sum_j / comb(n, 2)
    return {"purity": float(m.max(1).sum() / n), "accuracy": float(m[rows, cols].sum() / n),
            "nmi": float(mi / ((h(pi) + h(pj)) / 2)),
            "ari": float((sum_ij - expected) / ((sum_i + sum_j) / 2 - expected))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="article-b", choices=tuple(CONFIGS))
    p.add_argument("--dataset", default="mnist", choices=tuple(FOLDERS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0: all cores)")
    p.add_argument("--eval-every", type=int, default=5, help="test purity every N epochs")
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("VAECLUST_DATA", "data")))
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = p.parse_args()

    import keras
    import tensorflow as tf
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(args.seed)
    x_train, y_train, x_test, y_test = load(args.dataset, args.data_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)   # the history is written after every epoch
    model = build(args.config)
    history: list[dict] = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0, self.batches = time.perf_counter(), 0

        def on_train_batch_end(self, batch, logs=None):
            # Keras can sit idle for 5-25 s before an epoch's first batch (see "startup_seconds")
            if self.batches == 0:
                self.t1 = time.perf_counter()
            self.batches += 1

        def on_epoch_end(self, epoch, logs=None):
            t = time.perf_counter()
            entry = {"epoch": epoch + 1, "seconds": t - self.t0, "loss": float(logs["total"]),
                     "batches": self.batches, "startup_seconds": self.t1 - self.t0,
                     "seconds_after_first_batch": t - self.t1}
            if (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs:
                pred = model.predict(x_test, batch_size=1000, verbose=0).argmax(1)
                entry["test_purity"] = clustering_scores(y_test, pred, 10)["purity"]
            history.append(entry)
            print(json.dumps(entry), flush=True)
            tmp = args.out.with_suffix(".tmp")
            tmp.write_text(json.dumps({"history": history}, indent=1))
            os.replace(tmp, args.out)

    wall = time.perf_counter()
    model.fit(x_train, batch_size=100, epochs=args.epochs, shuffle=True, verbose=0, callbacks=[Record()])
    wall = time.perf_counter() - wall
    record = {"framework": f"tensorflow {tf.__version__}, keras {keras.__version__}", "config": args.config,
              "dataset": args.dataset, "seed": args.seed, "epochs": args.epochs, "threads": args.threads,
              "wall_seconds": wall, "history": history}
    for split, (x, y) in (("test", (x_test, y_test)), ("train", (x_train, y_train))):
        record[split] = clustering_scores(y, model.predict(x, batch_size=1000, verbose=0).argmax(1), 10)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, args.out)
    print(json.dumps({k: record[k] for k in ("test", "train", "wall_seconds")}, indent=1))


if __name__ == "__main__":
    main()
