"""The contrastive task: its record schema, the one-line refusals (accumulation, tokenizer settings that
do not fit the text tower), 8 devices == 1 device for CLIP's gathered and SigLIP's chunked loss, the
log-scale clamp after every update, and a pinned float32 reference of a few steps."""

import dataclasses

import jax
import numpy as np
import pytest

from frx import param_paths, tasks
from frx.config import ConfigError, MeshConfig, OptimConfig, ScheduleConfig, validate
from frx.data import schema
from tests.support.configs import tiny_contrastive_config
from tests.support.fixed_batches import train_steps


def test_records_are_images_and_token_ids_and_labelled_sets_get_labels():
    task = tasks.make(tiny_contrastive_config())
    assert task.record_schema() == {"image": schema.Field((8, 8, 3), "uint8"),
                                    "tokens": schema.Field((12,), "int32", high=259)}

    class Labelled:  # a zero-shot set
        classnames = ("red square", "blue circle")

    assert task.record_schema(Labelled())["label"] == schema.Field((), "int32", high=2)


def _with_data(cfg, **changes):
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **changes))


def _with_text(cfg, **changes):
    model = dataclasses.replace(cfg.model, text=dataclasses.replace(cfg.model.text, **changes))
    return dataclasses.replace(cfg, model=model)


@pytest.mark.parametrize("change, message", [
    (lambda c: dataclasses.replace(c, grad_accum=2), "grad_accum 2 would give each micro-batch only its own negatives"),
    (lambda c: _with_data(c, pp_train="decode|value_range(-1,1)"), "data.pp_train does not tokenize the captions"),
    (lambda c: _with_data(c, pp_eval="decode|tokenize(16)|value_range(-1,1)"),
     "data.pp_eval tokenizes to 16 tokens but model.text.context_length is 12"),
    (lambda c: _with_text(c, vocab_size=100), "the tokenizer has 259 ids but model.text.vocab_size is 100"),
    (lambda c: _with_text(c, eos_id=2), "model.text.pool=eos looks for token 2"),
])
def test_settings_the_task_cannot_train_give_one_line_errors(change, message):
    with pytest.raises(ConfigError, match=message) as info:
        tasks.make(validate(change(tiny_contrastive_config())))
    assert "\n" not in str(info.value)


def _params_after(cfg, steps=3):
    state, losses = train_steps(cfg, steps)
    return jax.device_get(state["params"]), losses


def _assert_same_params(actual, desired, lr):
    """Equal within float tolerance, except the attention key biases: softmax ignores a shift common to a
    query's logits, so their exact gradient is 0 and what they get is rounding noise, which Adam turns
    into steps of up to lr (tests/test_step.py has the same exception)."""
    for path, a, b in zip(param_paths.all_paths(actual), jax.tree.leaves(actual), jax.tree.leaves(desired)):
        if path.endswith("attn/k/bias"):
            assert np.abs(a).max() <= 2 * lr and np.abs(b).max() <= 2 * lr, path
        else:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=path)


def test_the_log_scale_is_clamped_after_every_update():
    """With the log-scale's learning rate 1000x, one Adam step moves it by about 1 (up or down); the
    clamp keeps it in [0, 0.1] exactly, where the unclamped run leaves that range."""
    optim = OptimConfig(lr=1e-3, lr_mults=((r"logit_scale", 1000.0),))
    cfg = tiny_contrastive_config(optim=optim, schedule=ScheduleConfig(warmup_steps=1))
    free = _params_after(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, logit_scale_init=0.05,
                                                                            logit_scale_max=None)))[0]
    clamped = _params_after(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, logit_scale_init=0.05,
                                                                               logit_scale_max=0.1)))[0]
    assert abs(float(free["logit_scale"]) - 0.05) > 0.5
    assert float(clamped["logit_scale"]) in (0.0, np.float32(0.1))


# Losses of the first 6 steps of tiny_contrastive_config on the fixed random batches of
# tests/support/fixed_batches.py (random pixels and token ids), lr 1e-2, warmup 1, float32 on the CPU,
# measured when the task was written. CPUs of one kind differ in their matmul kernels: pinned to a
# tolerance, not to bits.
PINNED = {
    "clip": [6.167109489440918, 7.568079948425293, 5.7491607666015625, 2.8238906860351562, 3.009643316268921,
             2.9227588176727295],
    "siglip": [8.789764404296875, 9.300365447998047, 6.973031997680664, 4.866737365722656, 4.229549407958984,
               3.9551331996917725],
}


@pytest.mark.parametrize("loss", sorted(PINNED))
def test_one_and_eight_devices_match_the_pinned_float32_reference(loss):
    """The gathered CLIP loss and SigLIP's ring on 8 fake devices take the steps one device takes."""
    cfg = tiny_contrastive_config(loss=loss, schedule=ScheduleConfig(warmup_steps=1), optim=OptimConfig(lr=1e-2))
    one, one_losses = _params_after(dataclasses.replace(cfg, mesh=MeshConfig(data=1)), steps=6)
    eight, eight_losses = _params_after(dataclasses.replace(cfg, mesh=MeshConfig(data=8)), steps=6)
    np.testing.assert_allclose(one_losses, PINNED[loss], rtol=2e-4)
    np.testing.assert_allclose(eight_losses, one_losses, rtol=1e-5)
    _assert_same_params(eight, one, lr=1e-2)
