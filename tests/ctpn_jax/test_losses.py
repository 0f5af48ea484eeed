"""Losses: hand values, finiteness, zero where there is nothing to learn."""

import jax
import jax.numpy as jnp
import numpy as np

from ctpn_jax.losses import LossConfig, ctpn_loss, smooth_l1

loss_grad = jax.jit(jax.grad(lambda o, t: ctpn_loss(o, t)[0]))


def fake(rng, shape=(2, 3, 4, 10)):
    outputs = {
        "cls_logits": rng.normal(size=(*shape, 2)).astype(np.float32),
        "vertical": rng.normal(size=(*shape, 2)).astype(np.float32),
        "side": rng.normal(size=shape).astype(np.float32),
    }
    labels = rng.choice([-1, 0, 1], size=shape).astype(np.int32)
    targets = {
        "labels": labels,
        "vertical": rng.normal(size=(*shape, 2)).astype(np.float32),
        "vertical_weight": (labels == 1).astype(np.float32),
        "side": rng.normal(size=shape).astype(np.float32),
        "side_weight": ((labels == 1) & (rng.random(shape) < 0.3)).astype(np.float32),
    }
    return outputs, targets


def test_smooth_l1_hand_values():
    x = jnp.array([-3.0, -1.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_allclose(smooth_l1(x), [2.5, 0.5, 0.125, 0.0, 0.125, 1.5])
    np.testing.assert_allclose(smooth_l1(x, beta=2.0), [2.0, 0.25, 0.0625, 0.0, 0.0625, 1.0])


def test_matches_numpy_reference():
    rng = np.random.default_rng(0)
    out, tg = fake(rng)
    cfg = LossConfig(cls_weight=1.0, vertical_weight=0.5, side_weight=2.0)
    loss, parts = ctpn_loss(out, tg, cfg)
    lab = tg["labels"]
    z = out["cls_logits"].astype(np.float64)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    sel = lab >= 0
    ce = -np.take_along_axis(logp, np.maximum(lab, 0)[..., None], -1)[..., 0]
    cls = ce[sel].mean()

    def sl1(d):
        a = np.abs(d)
        return np.where(a < 1, 0.5 * d * d, a - 0.5)

    pos = tg["vertical_weight"] > 0
    vert = sl1(out["vertical"] - tg["vertical"]).sum(-1)[pos].mean()
    side_sel = tg["side_weight"] > 0
    side = sl1(out["side"] - tg["side"])[side_sel].mean()
    np.testing.assert_allclose(parts["cls_loss"], cls, rtol=1e-5)
    np.testing.assert_allclose(parts["vertical_loss"], vert, rtol=1e-5)
    np.testing.assert_allclose(parts["side_loss"], side, rtol=1e-5)
    np.testing.assert_allclose(loss, cls + 0.5 * vert + 2.0 * side, rtol=1e-5)
    acc = (np.argmax(z, -1) == lab)[sel].mean()
    np.testing.assert_allclose(parts["cls_accuracy"], acc, rtol=1e-6)


def test_finite_with_finite_gradients():
    rng = np.random.default_rng(1)
    out, tg = fake(rng)
    grads = loss_grad(out, tg)
    for g in jax.tree.leaves(grads):
        assert np.isfinite(np.asarray(g)).all()
    # no gradient flows to anchors that are not sampled / not regressed
    unused = tg["labels"] < 0
    assert (np.asarray(grads["cls_logits"])[unused] == 0).all()
    assert (np.asarray(grads["vertical"])[tg["vertical_weight"] == 0] == 0).all()
    assert (np.asarray(grads["side"])[tg["side_weight"] == 0] == 0).all()


def test_zero_where_it_should_be():
    rng = np.random.default_rng(2)
    out, tg = fake(rng)
    # perfect regression -> zero regression losses
    perfect = {**out, "vertical": tg["vertical"], "side": tg["side"]}
    _, parts = ctpn_loss(perfect, tg)
    assert float(parts["vertical_loss"]) == 0.0 and float(parts["side_loss"]) == 0.0
    # nothing sampled and nothing to regress -> every term 0, finite zero gradients
    empty = {
        **tg,
        "labels": np.full_like(tg["labels"], -1),
        "vertical_weight": np.zeros_like(tg["vertical_weight"]),
        "side_weight": np.zeros_like(tg["side_weight"]),
    }
    loss, parts = ctpn_loss(out, empty)
    assert float(loss) == 0.0 and float(parts["num_sampled"]) == 0.0
    grads = loss_grad(out, empty)
    for g in jax.tree.leaves(grads):
        assert (np.asarray(g) == 0).all()
    # confident correct classification -> (almost) zero classification loss
    lab = tg["labels"]
    sure = np.stack([np.where(lab == 0, 50.0, -50.0), np.where(lab == 1, 50.0, -50.0)], -1)
    _, parts = ctpn_loss({**out, "cls_logits": sure.astype(np.float32)}, tg)
    assert float(parts["cls_loss"]) < 1e-6 and float(parts["cls_accuracy"]) == 1.0
