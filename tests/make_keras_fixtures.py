"""Write the committed Keras fixtures of tests/test_import_keras.py with real Keras (3, torch backend).

    KERAS_BACKEND=torch python tests/make_keras_fixtures.py

Each model is saved as ``tests/fixtures/keras/NAME.keras`` (Keras' own zip: config.json and
model.weights.h5) with ``NAME.json`` beside it: an input batch and the output Keras computes for
it, so the tests compare against Keras' own numbers even where Keras is not installed.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "keras"


def mnist_cnn() -> keras.Model:
    """The Keras Sequential MNIST CNN of S. García Cortés' course notes, Convolutional Networks
    (Universidad de Oviedo, 2023): 30,762 parameters, the zoo's mnist_cnn."""
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(16, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(32, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ], name="mnist_cnn")


def branch_add() -> keras.Model:
    """A functional model: a stem, two branches (3x3 conv + batch norm, 1x1 conv) added, then a head."""
    inputs = keras.Input(shape=(12, 12, 3), name="image")
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inputs)
    a = layers.Conv2D(8, 3, padding="same", use_bias=False, name="branch_conv")(x)
    a = layers.BatchNormalization(name="branch_bn")(a)
    a = layers.ReLU(name="branch_relu")(a)
    b = layers.Conv2D(8, 1, name="side_conv")(x)
    x = layers.Add(name="merge")([a, b])
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.25, name="drop")(x)
    outputs = layers.Dense(5, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="branch_add")


def main() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    for make in (mnist_cnn, branch_add):
        model = make()
        for layer in model.layers:  # running statistics other than 0 and 1, so their conversion is tested
            if isinstance(layer, layers.BatchNormalization):
                layer.moving_mean.assign(rng.normal(size=layer.moving_mean.shape).astype("float32"))
                layer.moving_variance.assign(rng.uniform(0.5, 2, size=layer.moving_variance.shape).astype("float32"))
        shape = tuple(model.inputs[0].shape[1:])
        x = rng.normal(size=(2, *shape)).astype("float32")
        y = np.asarray(model(x, training=False).detach().cpu() if hasattr(model(x), "detach") else model(x))
        model.save(FIXTURES / f"{model.name}.keras")
        record = {"params": int(model.count_params()), "input_nhwc": x.tolist(), "output": y.tolist()}
        (FIXTURES / f"{model.name}.json").write_text(json.dumps(record) + "\n")
        print(model.name, model.count_params())


if __name__ == "__main__":
    main()
