"""One layer as an exercise describes it: kind, output shape, parameters, settings.

A module of its own (no arithmetic, no framework) so that a graded notebook can import it
while the modules that compute output sizes and parameter counts, which assignment 3 grades,
stay absent from its kernel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LayerSpec:
    """One layer as a test expects it (or as a layer table found it).

    ``kind`` is the class name (``"Conv2D"``), ``output_shape`` leaves out the batch
    dimension, ``params`` counts the layer's weights and ``config`` lists the settings that
    must match, e.g. ``{"filters": 32, "kernel_size": (3, 3), "activation": "relu"}``.
    """

    kind: str
    output_shape: tuple[int, ...] | None = None
    params: int | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
