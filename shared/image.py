"""The one pixel-array type frames travel in between OpenCV calls: 8-bit BGR (or grey)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

NDArray = npt.NDArray[np.uint8]
