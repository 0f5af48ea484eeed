"""Anchors against hand-computed values."""

import numpy as np

from ctpn_jax.anchors import (
    ANCHOR_HEIGHTS,
    ANCHOR_WIDTH,
    FEATURE_STRIDE,
    anchor_centers_heights,
    anchor_grid,
    feature_size,
)


def test_original_constants():
    assert ANCHOR_HEIGHTS == (11, 16, 23, 33, 48, 68, 97, 139, 198, 283)
    assert ANCHOR_WIDTH == 16 and FEATURE_STRIDE == 16


def test_grid_shape_and_hand_values():
    a = anchor_grid(2, 3)
    assert a.shape == (2, 3, 10, 4) and a.dtype == np.float32
    # cell (0, 0): centre (8, 8); 11 px anchor -> y from 2.5 to 13.5
    np.testing.assert_allclose(a[0, 0, 0], [0, 2.5, 16, 13.5])
    # cell (1, 2): centre (40, 24); 283 px anchor -> 24 -+ 141.5
    np.testing.assert_allclose(a[1, 2, 9], [32, -117.5, 48, 165.5])
    # cell (1, 0), 48 px anchor: centre y 24
    np.testing.assert_allclose(a[1, 0, 4], [0, 0, 16, 48])


def test_every_anchor_is_16_wide_and_centred_on_its_cell():
    a = anchor_grid(4, 5)
    np.testing.assert_allclose(a[..., 2] - a[..., 0], 16.0)
    np.testing.assert_allclose(
        a[..., 3] - a[..., 1], np.broadcast_to(np.float32(ANCHOR_HEIGHTS), (4, 5, 10))
    )
    cx = (a[..., 0] + a[..., 2]) / 2
    cy = (a[..., 1] + a[..., 3]) / 2
    np.testing.assert_allclose(cx, np.broadcast_to(16 * np.arange(5)[None, :, None] + 8, cx.shape))
    np.testing.assert_allclose(cy, np.broadcast_to(16 * np.arange(4)[:, None, None] + 8, cy.shape))


def test_centers_heights_broadcast_like_grid():
    cx, cy, h = anchor_centers_heights(3, 4)
    a = anchor_grid(3, 4)
    np.testing.assert_allclose(np.broadcast_to(cx - 8, a.shape[:3]), a[..., 0])
    np.testing.assert_allclose(np.broadcast_to(cy + h / 2, a.shape[:3]), a[..., 3])


def test_feature_size():
    assert feature_size(600) == 38 and feature_size(608) == 38 and feature_size(1000) == 63
    assert feature_size(16) == 1 and feature_size(17) == 2
