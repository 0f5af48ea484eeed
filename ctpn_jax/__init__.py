"""CTPN text detection in JAX/Flax: the network, anchors, targets, losses, post-processing.

``CTPN`` is the network; ``ctpn_jax.detect.TextDetector`` runs it on whole images;
``ctpn_jax.task`` plugs it into ``train.py``; ``python -m ctpn_jax.evaluate`` scores it.
"""

from ctpn_jax.model import CPU_WIDTH, CTPN, CTPNConfig

__all__ = ["CPU_WIDTH", "CTPN", "CTPNConfig"]
