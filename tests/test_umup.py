"""u-μP (frx.umup, `--mup.param umup`): unit-variance initialisation, the forward multipliers and the
Adam learning-rate rules per role of the u-μP paper (arXiv 2407.17465, Table 3; unit_scaling's
lr_scale_func_adam), unit-scale activations at every width, and its coordinate check."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from frx import cli, coord_check, mup, param_paths
from frx.config import ConfigError, MupConfig, ViTConfig

UMUP = MupConfig(param="umup")


def _model(width, **kw):
    fields = dict(variant="mu/4", width=width, depth=2, num_heads=4, image_size=16, num_classes=4, posemb="learn",
                  rep_size=-1)
    return ViTConfig(**{**fields, **kw})


def _params(module):
    return {param_paths.path_str(p): np.asarray(v[...]) for p, v in nnx.iter_graph(module) if isinstance(v, nnx.Param)}


def test_every_random_weight_starts_with_unit_variance_and_the_rest_as_in_sp():
    sp = _params(mup.make_model(_model(256, head_zeroinit=False), None, 0))
    params = _params(mup.make_model(_model(256, head_zeroinit=False), UMUP, 0))
    for path in ("embedding/kernel", "pos_embedding", "blocks/0/attn/q/kernel", "blocks/1/mlp/fc2/kernel",
                 "pre_logits/kernel", "head/kernel"):
        assert params[path].std() == pytest.approx(1.0, rel=0.05), path
    for path in ("blocks/0/mlp/fc1/bias", "blocks/0/norm1/scale", "head/bias", "embedding/bias"):
        assert np.array_equal(params[path], sp[path]), path  # biases (N(0, 1e-6) in the MLP), norms: SP's
    zero_head = _params(mup.make_model(_model(256), UMUP, 0))
    assert not zero_head["head/kernel"].any()  # a zero-initialised readout stays zero


def test_forward_multipliers_and_attention_scale():
    model = mup.make_model(_model(256), MupConfig(param="umup", output_alpha=2.0, attn_alpha=3.0), 0)
    assert model.embedding.input_multiplier == pytest.approx(48**-0.5)  # 4x4x3 pixels: uu.Linear
    assert model.blocks[0].attn.q.input_multiplier == pytest.approx(256**-0.5)
    assert model.blocks[0].attn.out.input_multiplier == pytest.approx(256**-0.5)  # fan-in heads x head_dim
    assert model.blocks[0].mlp.fc2.input_multiplier == pytest.approx(1024**-0.5)
    assert model.head.input_multiplier == pytest.approx(2.0 / 256)  # uu.LinearReadout: alpha / fan_in
    assert model.blocks[0].attn.scale == pytest.approx(3.0 / 64)  # alpha / head_dim


def test_adam_learning_rate_factors_per_role():
    roles = mup.roles(_model(256), UMUP)
    params = nnx.to_pure_dict(nnx.state(mup.make_model(_model(256), UMUP, 0), nnx.Param))
    lr, wd = mup.lr_multipliers(roles, "adam", params, "umup")
    flat = dict(zip(param_paths.all_paths(lr), jax.tree.leaves(lr)))
    expected = {
        "embedding/kernel": 48**-0.5, "blocks/0/attn/q/kernel": 256**-0.5, "blocks/0/mlp/fc2/kernel": 1024**-0.5,
        "pre_logits/kernel": 256**-0.5, "pos_embedding": 256**-0.5,  # embedding rule: 1/sqrt(fan-out)
        "head/kernel": 1.0, "head/bias": 1.0, "blocks/0/mlp/fc1/bias": 1.0, "blocks/0/norm1/scale": 1.0,
    }
    for path, factor in expected.items():
        assert flat[path] == pytest.approx(factor), path
    assert set(jax.tree.leaves(wd)) == {1.0}  # frx's decay is independent of the lr already
    with pytest.raises(ConfigError, match="Adam only") as info:
        cli.parse_train_args("demo", ["--mup.param", "umup", "--optim.name", "sgd"])
    assert "\n" not in str(info.value)


def test_activations_start_at_unit_scale_at_every_width():
    images = jax.random.normal(jax.random.PRNGKey(0), (4, 16, 16, 3))
    for width in (64, 512):
        model = mup.make_model(_model(width), UMUP, 0)
        capture = nnx.capture(lambda m, x: m(x), nnx.Intermediate, method_outputs=nnx.Intermediate)
        _, found = capture(model, images)
        found = nnx.to_pure_dict(found)
        for name, value in (("embedding", found["embedding"]["__call__"][0]),
                            ("fc1", found["blocks"][0]["mlp"]["fc1"]["__call__"][0]),
                            ("v", found["blocks"][1]["attn"]["v"]["__call__"][0])):
            assert float(jnp.std(value)) == pytest.approx(1.0, abs=0.15), (width, name)


@pytest.mark.slow
def test_coord_check_passes_for_umup_with_zero_queries(capsys):
    args = ("demo --widths 16 128 --steps 3 --seeds 2 --lr 0.5 --batch 8 --model.image_size 16 --model.patch_size 4 "
            "--model.depth 1 --model.width 16 --model.num_heads 2 --model.num_classes 4 --mup.zero_init_queries True "
            "--data.synthetic.num_shapes 2 --data.synthetic.num_textures 1 --data.synthetic.train_size 64").split()
    cfg = cli.parse_train_args("demo", args[args.index("--model.image_size"):])
    check = coord_check.CoordCheck(cfg, widths=(16, 128), param="umup", steps=3, seeds=2, lr=0.5, batch_size=8)
    result = coord_check.run(check, log=lambda message: None)
    assert coord_check.passed(result), coord_check.format_table(result)
    assert math.isclose(result["modules"]["logits"]["16"][0], 0.0)  # the zero readout
