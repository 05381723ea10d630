"""Facts of the MNIST input format, used by the models, the preprocessing and training."""

from __future__ import annotations

NUM_CLASSES = 10  # digits 0–9
IMAGE_SIZE = 28  # side of a model input, in pixels
FIT_SIZE = 20  # the digit's longer side inside the input, as MNIST framed it

# Normalisation of the MNIST training set; the models are trained on (x - MEAN) / STD.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
