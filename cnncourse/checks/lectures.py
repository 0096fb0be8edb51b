"""The lecture sections that teach the rules the known mistakes break.

Each is ``(lecture notebook, heading)``; a catalogue entry names one as its ``lecture``
(:class:`cnncourse.checks.misconception_entry.Misconception`), and the class report links
each mistake there. ``tests/test_class_report.py`` checks that every heading exists.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

Section = tuple[str, str]

# Lecture 1: matrices and images
BATCHES_4D: Section = ("01_matrices_images.ipynb", "4. Batches are 4-D tensors")
# Lecture 2: convolution
OUTPUT_SIZE: Section = ("02_convolution.ipynb", "4. Stride, padding and the output size")
RECEPTIVE_FIELDS: Section = ("02_convolution.ipynb", "7. Receptive fields")
# Lecture 3: the forward pass in numpy
ZERO_PAD: Section = ("03_forward_numpy.ipynb", "1. `zero_pad`: a frame of zeros around each image")
SINGLE_STEP: Section = ("03_forward_numpy.ipynb", "2. `conv_single_step`: one window, one filter")
CONV_FORWARD: Section = (
    "03_forward_numpy.ipynb",
    "3. `conv_forward`: every example, every position, every filter",
)
POOL_FORWARD: Section = ("03_forward_numpy.ipynb", "5. `pool_forward`: max and average")
# Lecture 4: the backward pass in numpy
THREE_RULES: Section = ("04_backward_numpy.ipynb", "1. Three rules from one formula")
GRADIENT_CHECKING: Section = ("04_backward_numpy.ipynb", "3. Checking gradients numerically")
POOL_BACKWARD: Section = ("04_backward_numpy.ipynb", "4. Pooling backward")
BACKWARD_EXERCISES: Section = ("04_backward_numpy.ipynb", "Exercises")
# Lecture 5: training in numpy
LOSS_GRADIENT: Section = (
    "05_training_numpy.ipynb",
    "2. Softmax, cross-entropy and the gradient of the loss",
)
SGD: Section = ("05_training_numpy.ipynb", "4. Mini-batch stochastic gradient descent")
# Lecture 6: the frameworks' layers
CHANNELS_FIRST: Section = ("06_framework_layers.ipynb", "1. Channels-last versus channels-first")
FRAMEWORK_PADDING: Section = ("06_framework_layers.ipynb", "2. Padding")
# Lectures 7 and 8: the MNIST CNN in Keras and in PyTorch
KERAS_MODEL: Section = ("07_keras_mnist_cnn.ipynb", "2. The model, layer by layer")
TORCH_LOSS: Section = ("08_pytorch_mnist_cnn.ipynb", "3. Loss and optimizer")
TORCH_LOOP: Section = ("08_pytorch_mnist_cnn.ipynb", "4. The training loop")
# Lecture 9: cropping
CROPPING_FORMS: Section = ("09_cropping.ipynb", "2. Three ways to say how much to crop")
# Lecture 10: modern CNNs
BATCH_NORM: Section = ("10_modern_cnns.ipynb", "3. Batch normalization")
RESIDUAL_BLOCKS: Section = ("10_modern_cnns.ipynb", "4. Residual blocks")
