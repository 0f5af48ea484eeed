"""DenseNet + CTC text-line recogniser in Flax.

from densenet_jax import DenseNet, Charset
model = DenseNet()                      # the original 5990-class network
charset = Charset.default()             # class 0 = CTC blank, class k = line k
"""

from densenet_jax.charset import BLANK_ID, Charset, UnknownCharacterError
from densenet_jax.model import DenseNet

__all__ = ["BLANK_ID", "Charset", "DenseNet", "UnknownCharacterError"]
