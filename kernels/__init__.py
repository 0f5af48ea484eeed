"""Custom kernels for chinese-ocr-jax.

``kernels.nms`` is the NMS function (it shadows the submodule of the same name as an attribute;
import implementations from ``kernels.nms_jnp`` and ``kernels.nms_pallas``).
"""

from kernels.nms import nms

__all__ = ["nms"]
