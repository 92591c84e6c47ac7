"""Figures from published course notes, copied as data (each names its source)."""

# S. García Cortés, Convolutional Networks, course notes, Universidad de Oviedo (2023): model.summary() of the Keras MNIST network, as (layer type, output shape, params);
# shapes written (C, H, W) instead of Keras' (H, W, C). Total: 30,762.
KERAS_MNIST_SUMMARY = [
    ("conv2d", (16, 26, 26), 160),
    ("maxpool2d", (16, 13, 13), 0),
    ("conv2d", (32, 11, 11), 4_640),
    ("maxpool2d", (32, 5, 5), 0),
    ("flatten", (800,), 0),
    ("linear", (32,), 25_632),
    ("linear", (10,), 330),
]
