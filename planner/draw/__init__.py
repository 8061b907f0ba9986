"""SVG pictures of a plan (`planner draw`): the network's shapes, and one layer's arithmetic.

`draw_network` (`network.py`) puts one box per layer, each as tall as its output is large, with the
data flow as edges: a U-Net as U-Net figures draw it (`unet.py`), any other network in data-flow order,
left to right in rows; `boxes.py` holds what both layouts draw. `draw_layer` (`layer.py`) draws one
convolution or pooling layer in the style of Dumoulin & Visin's figures; a transposed convolution
is drawn as the guide draws it: the equivalent direct convolution over the stretched, padded input.
What either figure knows about an op is its entry in `figures.FIGURES`; `svg.py` holds the elements
both are built from.

Plain SVG 1.1 with a <style> element and SMIL; no dependency beyond the standard library.
"""

from __future__ import annotations

from planner.draw.figures import FIGURES, KERNEL_OPS, Kernel, OpFigure
from planner.draw.layer import draw_layer
from planner.draw.network import draw_network

__all__ = ["FIGURES", "KERNEL_OPS", "Kernel", "OpFigure", "draw_layer", "draw_network"]
