"""Test-wide settings: compile fast (tests run tiny shapes, where XLA's optimisations cost
more compile time than they save). The fixtures of tiny random models shared by
tests/test_infer.py and tests/test_serve.py.

The models are tiny and untrained, exported through the real export functions. The detector
is made deterministic by its class bias: every feature-map cell holds "text" for the 16-px
anchor only, so each 16-px row of the (resized) image becomes one text line spanning the
image. That gives known boxes without training; recognition accuracy is not tested.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest

from tests.helpers import ALPHABET, SMALL_DET

jax.config.update("jax_disable_most_optimizations", True)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> tuple[Path, Path]:
    """`(detector, recogniser)` weight files of tiny random models (see the module doc)."""
    from ctpn_jax.anchors import ANCHOR_HEIGHTS
    from ctpn_jax.model import CTPN, CTPNConfig, init_ctpn
    from ctpn_jax.weights import export_detector
    from densenet_jax.data.pipeline import LineDataConfig
    from densenet_jax.task import Config, build_model, export, init_variables

    folder = tmp_path_factory.mktemp("weights")
    charset = folder / "charset.txt"
    charset.write_text(" \n" + "\n".join(ALPHABET) + "\n", encoding="utf-8")
    cfg = Config(
        charset_file=str(charset),
        growth=4,
        depth=2,
        first_features=16,
        transition_features=16,
        dropout_rate=0.0,
        data=LineDataConfig(widths=(64,), system_fonts=False, workers=0),
    )
    model = build_model(cfg)
    rec = export(folder / "rec.npz", cfg, model, init_variables(model, cfg, jax.random.key(0)))

    det_cfg = CTPNConfig(width=0.02)  # every channel count at its minimum of 8
    variables = jax.tree.map(np.asarray, init_ctpn(CTPN.from_config(det_cfg), jax.random.key(1)))
    bias = np.zeros((len(ANCHOR_HEIGHTS), 2), np.float32)
    bias[:, 1] = -8.0  # logit of "text": no anchor is text ...
    bias[ANCHOR_HEIGHTS.index(16.0), 1] = 8.0  # ... except the 16-px one, everywhere
    variables["params"]["cls"]["bias"] = bias.reshape(-1)
    det = export_detector(folder / "det.npz", det_cfg, variables)
    return det, rec


@pytest.fixture(scope="session")
def ocr(tiny_weights) -> Any:
    """An `infer.OCR` of the tiny models; every detected line kept (the untrained recogniser
    reads most lines as empty)."""
    import infer

    det, rec = tiny_weights
    return infer.OCR(
        det,
        rec,
        batch_size=8,
        detector_options=SMALL_DET,
        compilation_cache=False,
        min_text_score=None,
    )
