"""Helpers shared by the course's lectures and assignments.

* :mod:`cnncourse.runtime` - notebook set-up: fast mode, seeds, thread pinning
* :mod:`cnncourse.data` - offline MNIST loader (bundled digits or full MNIST)
* :mod:`cnncourse.plots` - images, kernels, feature maps, training curves
* :mod:`cnncourse.testing` - checks used by assignment tests
* :mod:`cnncourse.oracles` - PyTorch reference layers for hidden tests
"""

from .runtime import RunConfig, setup_notebook

__all__ = ["RunConfig", "setup_notebook"]
