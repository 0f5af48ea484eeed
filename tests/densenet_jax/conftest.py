"""Shared fixtures: a small charset, fonts from pip-installed packages only, a tiny model."""

from pathlib import Path

import pytest

# ~300 frequent hanzi plus digits and a few Latin letters: a charset small enough for tiny
# models to learn in a few steps, rich enough for jieba's dictionary to give real words.
SMALL_ALPHABET = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过"
    "子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体"
    "制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内"
    "数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提"
    "直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计"
    "0123456789ABCDEFabcdef"
)


@pytest.fixture(scope="session")
def small_charset_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("charset") / "small.txt"
    path.write_text(" \n" + "\n".join(SMALL_ALPHABET) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def small_charset(small_charset_file):
    from densenet_jax.charset import Charset

    return Charset.from_file(small_charset_file)


@pytest.fixture(scope="session")
def pip_fonts():
    """Only the fonts that `pip install` brings (mplfonts), as in CI."""
    from ocr_common.fonts import list_fonts

    return list_fonts(system=False)


@pytest.fixture
def tiny_config(small_charset_file):
    """Factory of a task config whose DenseNet trains in seconds on the CPU."""
    return lambda **data: _tiny_task_config(small_charset_file, **data)


def _tiny_task_config(charset_file, **data):
    from densenet_jax.data.pipeline import LineDataConfig
    from densenet_jax.task import Config

    data = {
        "widths": (96,),
        "min_chars": 2,
        "max_chars": 4,
        "max_label_len": 8,
        "system_fonts": False,
        "workers": 0,
        **data,
    }
    return Config(
        charset_file=str(charset_file),
        growth=4,
        depth=2,
        first_features=16,
        transition_features=16,
        dropout_rate=0.0,
        eval_size=8,
        data=LineDataConfig(**data),
    )


def adam_steps(cfg, batch: dict, steps: int, lr: float = 3e-3) -> tuple[list, dict, dict]:
    """`steps` Adam steps of `task.loss_fn` on one fixed batch from the seed-0 initialisation.

    Returns the losses, the final params and the final model state (batch statistics).
    """
    import jax
    import optax

    from densenet_jax import task

    model = task.build_model(cfg)
    variables = task.init_variables(model, cfg, jax.random.key(0))
    params, state = variables.pop("params"), variables
    tx = optax.adam(lr)
    opt = tx.init(params)

    @jax.jit
    def step(params, state, opt, key):
        (loss, (state, _)), g = jax.value_and_grad(
            lambda p: task.loss_fn(cfg, model, p, state, batch, key), has_aux=True
        )(params)
        upd, opt = tx.update(g, opt)
        return optax.apply_updates(params, upd), state, opt, loss

    losses = []
    for i in range(steps):
        params, state, opt, loss = step(params, state, opt, jax.random.key(i))
        losses.append(float(loss))
    return losses, params, state


@pytest.fixture(scope="session")
def fit_batch():
    """`adam_steps`, for tests (conftest modules are not importable under importlib mode)."""
    return adam_steps
