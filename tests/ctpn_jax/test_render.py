"""The synthetic page renderer and the data sets it writes."""

import numpy as np
import pytest

from ctpn_jax.data.labels import find_samples, read_labels
from ctpn_jax.data.render import KINDS, PageRenderer, page_rng, write_dataset


@pytest.fixture(scope="module")
def renderer():
    return PageRenderer()


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_renders_labelled_text(renderer, kind):
    page = renderer.render(page_rng(0, KINDS.index(kind)), kind=kind)
    h, w = page.image.shape[:2]
    assert page.image.dtype == np.uint8 and page.image.ndim == 3 and min(h, w) >= 300
    assert page.kind == kind and len(page.lines) >= 1
    for t in page.lines:
        q = t.quad
        assert q.shape == (4, 2) and t.text.strip()
        assert q[:, 0].min() >= -1 and q[:, 1].min() >= -1
        assert q[:, 0].max() <= w + 1 and q[:, 1].max() <= h + 1
        # text is drawn inside the box: the box region is not a flat colour
        x0, y0 = np.floor(q.min(0)).astype(int).clip(0)
        x1, y1 = np.ceil(q.max(0)).astype(int)
        assert page.image[y0:y1, x0:x1].std() > 3


def test_deterministic(renderer):
    a = renderer.render(page_rng(3, 7))
    b = renderer.render(page_rng(3, 7))
    np.testing.assert_array_equal(a.image, b.image)
    assert [t.text for t in a.lines] == [t.text for t in b.lines]


@pytest.mark.parametrize("fmt", ["json", "icdar2015"])
def test_written_sets_read_back(tmp_path, renderer, fmt):
    write_dataset(tmp_path, 2, seed=1, fmt=fmt, renderer=renderer)
    samples = find_samples(tmp_path)
    assert len(samples) == 2
    page = renderer.render(page_rng(1, 0))
    lines = read_labels(samples[0].label)
    assert [t.text for t in lines] == [t.text for t in page.lines]
    np.testing.assert_allclose(np.stack([t.quad for t in lines]),
                               np.stack([t.quad for t in page.lines]), atol=0.01)
