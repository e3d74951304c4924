"""muP (frx.mup): equivalence with SP at the base width, roles from shapes, init scales per role,
learning-rate and weight-decay factors for Adam and SGD, the zero readout, and wider-is-better
(the tests of microsoft/mup's test suite, ../shared/spec/mup.md section 11)."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from frx import losses, mup, optim, param_paths, schedules, sharding
from frx import state as state_lib
from frx import train as train_lib
from frx.cli import parse_train_args
from frx.config import ConfigError, MeshConfig, MupConfig, OptimConfig, ScheduleConfig, ViTConfig
from frx.data import pipeline
from frx.step import jit_train_step
from tests.support.configs import tiny_config


def _model(width, **kw):
    fields = dict(variant="mu/4", width=width, depth=1, num_heads=2, image_size=16, num_classes=4)
    return ViTConfig(**{**fields, **kw})


def _mup(base_width, **kw):
    return MupConfig(param="mup", base_width=base_width, **kw)


def _flat(params) -> dict[str, np.ndarray]:
    return {p: np.asarray(v) for p, v in zip(param_paths.all_paths(params), jax.tree.leaves(params))}


# --------------------------------------------------------------------------------------------------
# m = 1: muP is SP


def _train_steps(cfg, steps: int):
    run = train_lib.setup(cfg)
    state = run.spec.init_state()
    step = jit_train_step(cfg, run.task, run.spec, run.mesh)
    data = pipeline.make_train_dataset(run.sources["train"], run.task.train_pp, run.task.record_schema(),
                                       batch_size=cfg.batch_size, seed=cfg.seed)
    losses_seen = []
    for i in range(steps):
        state, metrics = step(state, sharding.put_batch(data[i], run.mesh))
        losses_seen.append(np.asarray(metrics["train/loss"]))
    return _flat(state["params"]), losses_seen


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_mup_at_the_base_width_is_bit_identical_to_sp(optimizer):
    # Every kind of parameter: learned posemb, MAP pooling (probe, its attention and MLP), tanh
    # pre-logits, a non-zero head (so that the readout multiplier and its init would matter).
    base = tiny_config()
    cfg = dataclasses.replace(
        base,
        model=dataclasses.replace(base.model, pool="map", posemb="learn", rep_size=-1, head_zeroinit=False),
        optim=dataclasses.replace(base.optim, name=optimizer),
        schedule=ScheduleConfig(decay="constant", warmup_steps=0),
        mesh=MeshConfig(data=1),  # one device compiles faster; data parallelism is tested elsewhere
    )
    sp_params, sp_losses = _train_steps(cfg, 2)
    mu_params, mu_losses = _train_steps(dataclasses.replace(cfg, mup=_mup(cfg.model.dims().width)), 2)
    assert [float(x) for x in mu_losses] == [float(x) for x in sp_losses]
    assert sp_params.keys() == mu_params.keys()
    for path in sp_params:
        assert np.array_equal(sp_params[path], mu_params[path]), path


# --------------------------------------------------------------------------------------------------
# Roles and factors


def test_roles_come_from_comparing_shapes_with_the_base_model():
    model = _model(128, pool="tok", posemb="learn", rep_size=-1)
    roles = mup.roles(model, _mup(32))
    expected = {
        "embedding/kernel": ("input", 1, 4),
        "embedding/bias": ("vector", 1, 4),
        "pos_embedding": ("vector", 1, 4),
        "cls": ("vector", 1, 4),
        "blocks/0/norm1/scale": ("vector", 1, 4),
        "blocks/0/attn/q/kernel": ("hidden", 4, 4),
        "blocks/0/attn/q/bias": ("vector", 1, 4),
        "blocks/0/attn/out/kernel": ("hidden", 4, 4),
        "blocks/0/mlp/fc1/kernel": ("hidden", 4, 4),
        "blocks/0/mlp/fc2/kernel": ("hidden", 4, 4),
        "pre_logits/kernel": ("hidden", 4, 4),
        "head/kernel": ("output", 4, 1),
        "head/bias": ("finite", 1, 1),
    }
    for path, (role, m_in, m_out) in expected.items():
        r = roles[path]
        assert (r.role, r.fan_in_mult, r.fan_out_mult) == (role, m_in, m_out), path
    # A fixed-size pre-logits layer maps the width to a finite size: it is the readout, and the
    # head after it sees no width at all.
    fixed = mup.roles(_model(128, rep_size=48), _mup(32))
    assert fixed["pre_logits/kernel"].role == "output" and fixed["head/kernel"].role == "finite"
    # Only the MLP size scales (base_mlp_dim): fc1 maps a finite size into it (an input weight),
    # fc2 maps it back to a finite size (a readout-like weight); attention sees no width at all.
    mlp_only = mup.roles(_model(32, mlp_dim=512), MupConfig(param="mup", base_mlp_dim=128))
    assert mlp_only["blocks/0/mlp/fc1/kernel"].role == "input"
    assert mlp_only["blocks/0/mlp/fc2/kernel"].role == "output"
    assert mlp_only["blocks/0/attn/q/kernel"].role == "finite"


def test_any_model_built_from_frx_layers_can_be_parametrized():
    from frx.models import inits, layers

    class TinyMlp(nnx.Module):  # not a ViT: input, hidden and readout layers of a plain MLP
        def __init__(self, width, rngs):
            kw = dict(kernel_init=inits.lecun_normal, rngs=rngs)
            self.inp = layers.Dense((8,), (width,), **kw)
            self.hidden = layers.Dense((width,), (width,), **kw)
            self.out = layers.Dense((width,), (3,), **kw)

        def __call__(self, x):
            return self.out(jax.nn.relu(self.hidden(jax.nn.relu(self.inp(x)))))

    sp = TinyMlp(256, nnx.Rngs(0))
    model = TinyMlp(256, nnx.Rngs(0))
    table = mup.parametrize(model, nnx.eval_shape(lambda: TinyMlp(64, nnx.Rngs(0))), MupConfig(param="mup"))
    assert {p: r.role for p, r in table.items() if p.endswith("kernel")} == {
        "inp/kernel": "input", "hidden/kernel": "hidden", "out/kernel": "output"}
    assert model.out.input_multiplier == 1 / 4 and model.inp.input_multiplier == 1.0
    # lecun-normal hidden kernels already have muP's std; the readout's is brought back to the base's.
    assert np.array_equal(model.hidden.kernel[...], sp.hidden.kernel[...])
    np.testing.assert_allclose(model.out.kernel[...], 2 * sp.out.kernel[...], rtol=1e-6)
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    lr, wd = mup.lr_multipliers(table, "adam", params)
    assert (lr["hidden"]["kernel"], lr["out"]["kernel"], lr["inp"]["kernel"], wd["hidden"]["kernel"]) == (0.25, 1, 1, 1)
    assert model(jnp.ones((2, 8))).shape == (2, 3)


def test_a_parameter_without_an_init_law_is_refused_by_name(monkeypatch):
    class Custom(nnx.Module):  # a user layer that creates its parameter the plain Flax way
        def __init__(self, cfg, seed):
            self.gain = nnx.Param(jnp.ones((cfg.dims().width,)))

    monkeypatch.setattr(mup.models, "make", lambda cfg, seed=0: Custom(cfg, seed))
    with pytest.raises(ConfigError, match=r"parameter gain has no init law.*frx.models.inits.param"):
        mup.roles(_model(48), _mup(24))


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_lr_and_wd_factors_per_role_for_adam_and_sgd(optimizer):
    roles = mup.roles(_model(128, posemb="learn", rep_size=-1), _mup(32))  # m = 4
    expected_lr = {  # ../shared/spec/mup.md section 2, readout form A
        "adam": {"input": 1, "vector": 1, "hidden": 1 / 4, "output": 1, "finite": 1},
        "sgd": {"input": 4, "vector": 4, "hidden": 1, "output": 4, "finite": 1},
    }[optimizer]
    seen = set()
    for r in roles.values():
        assert mup.lr_factor(r, optimizer) == expected_lr[r.role], r.path
        assert mup.wd_factor(r, optimizer) == 1.0  # decoupled decay: already width-invariant per step
        seen.add(r.role)
    assert seen == set(mup.ROLES)
    # When fan-in and fan-out scale differently (only the MLP is wider than the base), SGD's hidden
    # rule is eta * m_out / m_in and Adam's eta / m_in.
    uneven = mup.roles(_model(64, mlp_dim=512), MupConfig(param="mup", base_width=32, base_mlp_dim=128))
    fc1 = uneven["blocks/0/mlp/fc1/kernel"]  # 64 -> 512 vs 32 -> 128: m_in 2, m_out 4
    assert (fc1.fan_in_mult, fc1.fan_out_mult) == (2, 4)
    assert mup.lr_factor(fc1, "sgd") == 2 and mup.lr_factor(fc1, "adam") == 0.5


def _one_update(model_cfg, mup_cfg, optim_cfg, grads_fn):
    """The optimizer's first update for grads_fn(params), at a constant schedule."""
    _, abstract = state_lib.abstract_model(model_cfg, 0, mup_cfg)
    lr_mults, wd_mults = mup.optimizer_multipliers(model_cfg, mup_cfg, optim_cfg.name, abstract)
    schedule = schedules.make(ScheduleConfig(decay="constant"), 10, 0)
    tx = optim.make(optim_cfg, schedule, abstract, extra_lr_mults=lr_mults, extra_wd_mults=wd_mults)

    @jax.jit
    def init_and_update():
        params = state_lib.init_params(model_cfg, 0, mup_cfg)
        return params, tx.update(grads_fn(params), tx.init(params), params)[0]

    params, updates = init_and_update()
    return _flat(params), _flat(updates)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_the_optimizer_applies_the_factors_and_decay_stays_width_invariant(optimizer):
    lr, wd = 0.01, 0.1
    for width in (32, 128):
        model, mup_cfg = _model(width, rep_size=-1), _mup(32)
        roles = mup.roles(model, mup_cfg)
        # Learning rate: grads of ones; Adam's first direction is g/(|g|+eps) ~ 1, SGD's is g = 1.
        cfg = OptimConfig(name=optimizer, lr=lr, wd=0.0, grad_clip_norm=0.0, momentum=0.0)
        _, updates = _one_update(model, mup_cfg, cfg, lambda p: jax.tree.map(jnp.ones_like, p))
        for path, u in updates.items():
            np.testing.assert_allclose(u, -lr * mup.lr_factor(roles[path], optimizer), rtol=1e-5, err_msg=path)
        # Weight decay: zero grads; every kernel shrinks by the same fraction wd at every width.
        cfg = OptimConfig(name=optimizer, lr=lr, wd=wd, grad_clip_norm=0.0)
        params, updates = _one_update(model, mup_cfg, cfg, lambda p: jax.tree.map(jnp.zeros_like, p))
        for path, u in updates.items():
            expected = -wd * params[path] if path.endswith("kernel") else np.zeros_like(params[path])
            np.testing.assert_allclose(u, expected, rtol=1e-6, atol=1e-12, err_msg=path)


def test_attention_scale_is_one_over_head_dim_and_exactly_sp_at_the_base():
    def scale(model_cfg, mup_cfg):
        return mup.make_model(model_cfg, mup_cfg, 0).blocks[0].attn.scale

    assert scale(_model(32), _mup(32)) == 16**-0.5 == scale(_model(32), MupConfig())
    assert scale(_model(128), _mup(32)) == pytest.approx(math.sqrt(16) / 64)  # head_dim 16 -> 64
    assert scale(_model(128), _mup(32, attn_alpha=2.0)) == pytest.approx(2 * math.sqrt(16) / 64)
    # Heads scale instead (head_dim fixed at 16): 1/sqrt(d_head) is muP's scale too.
    assert scale(_model(128, num_heads=8), _mup(32, base_num_heads=2)) == 16**-0.5
    model = mup.make_model(_model(128, rep_size=-1), _mup(32, output_alpha=3.0, input_alpha=0.5), 0)
    assert model.head.input_multiplier == 3.0 / 4
    assert model.embedding.input_multiplier == 0.5
    assert model.pre_logits.input_multiplier == 1.0


# --------------------------------------------------------------------------------------------------
# Initialisation


def test_init_std_per_role_across_widths():
    widths = (64, 256, 1024)
    stds = {}
    for width in widths:
        for param in ("sp", "mup"):
            model = _model(width, image_size=32, patch_size=8, posemb="learn", rep_size=-1)
            cfg = MupConfig(param=param, base_width=64 if param == "mup" else None)
            params = _flat(nnx.to_pure_dict(nnx.state(mup.make_model(model, cfg, 0), nnx.Param)))
            for path in ("embedding/kernel", "pos_embedding", "blocks/0/attn/q/kernel", "blocks/0/mlp/fc2/kernel",
                         "pre_logits/kernel", "head/kernel"):
                stds[param, path, width] = float(params[path].std())
    for w in widths:
        # Input layer and learned position embedding: the base width's std at every width
        # (relative differences are sampling noise; 192 * width entries).
        assert stds["mup", "embedding/kernel", w] == pytest.approx(stds["mup", "embedding/kernel", 64], rel=0.03)
        assert stds["mup", "pos_embedding", w] == pytest.approx(64**-0.5, rel=0.05)
        assert stds["mup", "head/kernel", w] == 0.0  # zero readout
    # SP's learned posemb shrinks like 1/sqrt(width): the width-dependent init muP must undo.
    assert stds["sp", "pos_embedding", 1024] == pytest.approx(1024**-0.5, rel=0.05)
    for path in ("blocks/0/attn/q/kernel", "blocks/0/mlp/fc2/kernel", "pre_logits/kernel"):
        hidden = [stds["mup", path, w] for w in widths]
        assert hidden[0] > hidden[1] > hidden[2], path  # strictly decreasing
        assert hidden[2] / hidden[0] == pytest.approx(1 / 4, rel=0.03), path  # 1/sqrt(m), m = 16


def test_zero_head_gives_exactly_zero_logits_and_the_same_first_loss_at_every_width():
    images = jax.random.uniform(jax.random.PRNGKey(0), (4, 16, 16, 3), minval=-1, maxval=1)
    labels = jax.nn.one_hot(jnp.arange(4), 4)
    for width in (32, 64, 128):
        model = mup.make_model(_model(width, rep_size=-1), _mup(32), 0)
        assert model.head.input_multiplier == 32 / width
        logits = model(images)
        assert np.array_equal(np.asarray(logits), np.zeros((4, 4), np.float32))
        assert float(jnp.mean(losses.softmax_xent(logits, labels))) == pytest.approx(math.log(4), abs=1e-6)


def test_zero_init_queries():
    model = mup.make_model(_model(64), _mup(32, zero_init_queries=True), 0)
    assert not np.asarray(model.blocks[0].attn.q.kernel[...]).any()
    assert np.asarray(model.blocks[0].attn.k.kernel[...]).any()


@pytest.mark.parametrize("param", ["sp", "mup"])
def test_init_std_mult_scales_every_random_parameter_and_leaves_constants(param):
    model = _model(128, posemb="learn", rep_size=-1, head_zeroinit=False)
    plain, scaled = (_flat(nnx.to_pure_dict(nnx.state(mup.make_model(
        model, MupConfig(param=param, base_width=64 if param == "mup" else None, init_std_mult=mult), 0), nnx.Param)))
        for mult in (1.0, 0.25))
    random = [p for p in plain if plain[p].std() > 0]
    assert {"embedding/kernel", "pos_embedding", "blocks/0/attn/q/kernel", "head/kernel"} <= set(random)
    for path in plain:
        if path in random:  # the same draw, multiplied: sigma is a pure multiplier of the std
            np.testing.assert_allclose(scaled[path], 0.25 * plain[path], rtol=1e-6, err_msg=path)
        else:  # biases (zeros), LayerNorm scales (ones): not random, unchanged
            assert np.array_equal(scaled[path], plain[path]), path
    queries = mup.make_model(model, MupConfig(param=param, base_width=64 if param == "mup" else None,
                                              init_std_mult=3.0, zero_init_queries=True), 0)
    assert not np.asarray(queries.blocks[0].attn.q.kernel[...]).any()  # zero-initialised stays zero


# --------------------------------------------------------------------------------------------------
# Configuration


def test_mup_switches_work_on_every_preset():
    from frx import presets

    for name in presets.names():
        root = ["--data.root", "/data/train"] if presets.get(name).data.source in ("folder", "tar_captions", "tol") else []
        cfg = parse_train_args(name, ["--mup.param", "mup", "--mup.base_width", "192", *root])
        assert cfg.mup == MupConfig(param="mup", base_width=192)
        assert mup.base_model_config(cfg.model, cfg.mup).dims().width == 192


@pytest.mark.parametrize(
    "args, message",
    [
        (["--mup.output_alpha", "2"], "only applies to muP"),
        (["--mup.param", "mup", "--mup.base_width", "0"], "base_width must be positive"),
        (["--mup.param", "mup", "--mup.base_width", "66"], "not divisible by base heads"),
        (["--mup.param", "mup", "--mup.base_width", "28", "--model.mlp_dim", "300"], "set --mup.base_mlp_dim"),
        (["--mup.param", "mup", "--mup.attn_alpha", "-1"], "attn_alpha must be positive"),
        (["--mup.init_std_mult", "0"], "init_std_mult must be positive"),
    ],
)
def test_bad_mup_settings_give_one_line_errors(args, message):
    with pytest.raises(ConfigError, match=message) as info:
        cfg = parse_train_args("demo", args)
        mup.check(cfg.model, cfg.mup)  # the base model's checks, which frx.train.setup runs before compiling
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------------------------------
# Wider is better


@pytest.mark.slow
def test_wider_is_better_under_mup_after_a_few_hundred_steps():
    """mup's MLPTrainCase on a ViT: the zero readout makes the first loss log(C) at every width, and
    after 100 and 200 Adam steps the training loss is strictly ordered by width (x4 apart).

    Heads grow with the width here (head_dim 8 fixed). With 2 heads whose head_dim grows from 8 to
    128, 1/d attention at attn_alpha = 1 learns attention too slowly in so short a run and width 256
    ends up behind width 64 (docs/mup.md, "What did not transfer")."""
    from frx.config import DataConfig, SyntheticConfig
    from frx.data.sources import make_sources

    source = make_sources(DataConfig(synthetic=SyntheticConfig(train_size=256, val_size=32)), 16)["train"]
    images = jnp.asarray(np.stack([source[i]["image"] for i in range(256)]), jnp.float32) / 127.5 - 1
    labels = jax.nn.one_hot(jnp.asarray([source[i]["label"] for i in range(256)]), 16)
    mup_cfg = _mup(16, base_num_heads=2)
    curves = {}
    for width in (16, 64, 256):
        model_cfg = _model(width, num_heads=width // 8, num_classes=16)
        graphdef, abstract = state_lib.abstract_model(model_cfg, 0, mup_cfg)
        params = jax.jit(lambda m=model_cfg: state_lib.init_params(m, 0, mup_cfg))()
        lr_mults, _ = mup.optimizer_multipliers(model_cfg, mup_cfg, "adam", abstract)
        tx = optim.make(OptimConfig(lr=2**-7, wd=0.0, grad_clip_norm=0.0),
                        schedules.make(ScheduleConfig(decay="constant"), 200, 0), abstract, extra_lr_mults=lr_mults)

        @jax.jit
        def step(params, opt_state, i, graphdef=graphdef, tx=tx):
            batch = jax.lax.dynamic_slice_in_dim(jnp.arange(256), (i * 32) % 256, 32)

            def loss_fn(p):
                return jnp.mean(losses.softmax_xent(nnx.merge(graphdef, p)(images[batch]), labels[batch]))

            loss, grads = jax.value_and_grad(loss_fn)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        opt_state, seen = tx.init(params), []
        for i in range(200):
            params, opt_state, loss = step(params, opt_state, i)
            seen.append(float(loss))
        curves[width] = seen
    assert curves[16][0] == curves[64][0] == curves[256][0] == pytest.approx(math.log(16), abs=1e-5)
    for end in (100, 200):
        smoothed = {w: np.mean(c[end - 20:end]) for w, c in curves.items()}
        assert smoothed[16] > smoothed[64] > smoothed[256], (end, smoothed)


def test_a_two_towers_widths_scale_together_and_its_projections_are_readouts():
    from frx import presets

    model = presets.get("clip_demo").model  # image width 96, text width 64
    table = mup.roles(model, MupConfig(param="mup", base_width=48))  # the text tower's base: 32
    assert mup.base_model_config(model, MupConfig(param="mup", base_width=48)).text.width == 32
    roles = {path: r.role for path, r in table.items()}
    assert roles["image/head/kernel"] == roles["text/head/kernel"] == "output"
    assert roles["image/embedding/kernel"] == "input" and roles["text/embedding"] == "vector"
    assert roles["text/blocks/1/mlp/fc2/kernel"] == roles["image/blocks/3/attn/q/kernel"] == "hidden"
    assert roles["logit_scale"] == "finite" and table["text/blocks/0/mlp/fc1/kernel"].fan_in_mult == 2.0
    assert mup.readout_multiplier(table["text/head/kernel"], MupConfig(param="mup")) == 0.5


# --------------------------------------------------------------------------------------------------
# Any Flax NNX model and any Optax chain: roles from shapes, scale_adam_by_mup / scale_sgd_by_mup


def _random_grads(params, steps=2):
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(1), steps * len(leaves)).reshape(steps, len(leaves), -1)
    return [jax.tree.unflatten(tree, [jax.random.normal(k, x.shape) for k, x in zip(ks, leaves)]) for ks in keys]


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_scale_by_mup_after_a_plain_optax_optimizer_equals_frx_optimizer(optimizer):
    model_cfg, mup_cfg, lr = _model(128, rep_size=-1, head_zeroinit=False), _mup(32), 0.01
    _, params = state_lib.abstract_model(model_cfg, 0, mup_cfg)
    params = state_lib.init_params(model_cfg, 0, mup_cfg)
    lr_mults, _ = mup.optimizer_multipliers(model_cfg, mup_cfg, optimizer, params)
    cfg = OptimConfig(name=optimizer, lr=lr, wd=0.0, grad_clip_norm=0.0, momentum=0.9)
    ours = optim.make(cfg, schedules.make(ScheduleConfig(decay="constant"), 10, 0), params, extra_lr_mults=lr_mults)
    plain = optax.adam(lr) if optimizer == "adam" else optax.sgd(lr, momentum=0.9)
    theirs = optax.chain(plain, mup.scale_adam_by_mup(mup.roles(model_cfg, mup_cfg)) if optimizer == "adam"
                         else mup.scale_sgd_by_mup(mup.roles(model_cfg, mup_cfg)))
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    for grads in _random_grads(params):
        u_ours, s_ours = ours.update(grads, s_ours, params)
        u_theirs, s_theirs = theirs.update(grads, s_theirs, params)
        for path, (a, b) in zip(param_paths.all_paths(params), zip(jax.tree.leaves(u_ours), jax.tree.leaves(u_theirs))):
            np.testing.assert_allclose(b, a, rtol=2e-6, atol=1e-12, err_msg=path)
    factors = {p: mup.lr_factor(r, optimizer) for p, r in mup.roles(model_cfg, mup_cfg).items()}
    assert factors["blocks/0/mlp/fc1/kernel"] == (0.25 if optimizer == "adam" else 1.0)  # the rule was applied


class _FlaxMlp(nnx.Module):  # nothing from frx: Flax's own layers and initialisers
    def __init__(self, width, rngs):
        self.embed = nnx.Embed(11, width, rngs=rngs)
        self.hidden = nnx.Linear(width, 2 * width, rngs=rngs)
        self.norm = nnx.LayerNorm(2 * width, rngs=rngs)
        self.readout = nnx.Linear(2 * width, 3, rngs=rngs)

    def __call__(self, ids):
        return self.readout(self.norm(jax.nn.relu(self.hidden(self.embed(ids).mean(1)))))


def test_roles_from_shapes_and_form_b_parametrization_of_a_plain_flax_model():
    sp, model = _FlaxMlp(256, nnx.Rngs(0)), _FlaxMlp(256, nnx.Rngs(0))
    table = mup.parametrize_by_shapes(model, nnx.eval_shape(lambda: _FlaxMlp(64, nnx.Rngs(0))))
    assert {p: (r.role, r.fan_in_mult, r.fan_out_mult) for p, r in table.items()} == {
        "embed/embedding": ("input", 1, 4), "hidden/kernel": ("hidden", 4, 4), "hidden/bias": ("vector", 1, 4),
        "norm/scale": ("vector", 1, 4), "norm/bias": ("vector", 1, 4), "readout/kernel": ("output", 4, 1),
        "readout/bias": ("finite", 1, 1)}
    # form B: the readout's lecun init (var 1/fan_in) becomes var ∝ 1/fan_in² (x 1/sqrt(m)); the rest is Flax's
    np.testing.assert_allclose(model.readout.kernel[...], sp.readout.kernel[...] / 2, rtol=1e-6)
    assert np.array_equal(model.hidden.kernel[...], sp.hidden.kernel[...])
    adam = {p: mup.lr_factor(r, "adam") for p, r in table.items()}
    sgd = {p: mup.lr_factor(r, "sgd") for p, r in table.items()}
    assert (adam["hidden/kernel"], adam["readout/kernel"], adam["embed/embedding"], adam["norm/scale"]) == (0.25, 0.25, 1, 1)
    assert (sgd["hidden/kernel"], sgd["readout/kernel"], sgd["embed/embedding"], sgd["hidden/bias"]) == (1, 0.25, 4, 4)
    sigma = _FlaxMlp(256, nnx.Rngs(0))
    mup.parametrize_by_shapes(sigma, nnx.eval_shape(lambda: _FlaxMlp(64, nnx.Rngs(0))), init_std_mult=0.5)
    np.testing.assert_allclose(sigma.readout.kernel[...], model.readout.kernel[...] / 2, rtol=1e-6)
    np.testing.assert_allclose(sigma.embed.embedding[...], model.embed.embedding[...] / 2, rtol=1e-6)
    assert np.array_equal(sigma.norm.scale[...], model.norm.scale[...])  # ones: not random, unchanged


def test_scale_by_mup_works_with_nnx_optimizer_and_with_nnx_state_trees():
    model = _FlaxMlp(256, nnx.Rngs(0))
    table = mup.parametrize_by_shapes(model, nnx.eval_shape(lambda: _FlaxMlp(64, nnx.Rngs(0))))
    tx = optax.chain(optax.sgd(0.1), mup.scale_sgd_by_mup(table))
    before = {p: np.asarray(v[...]) for p, v in [("hidden", model.hidden.kernel), ("embed", model.embed.embedding)]}
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    ids = jnp.arange(8).reshape(4, 2)
    grads = nnx.grad(lambda m: jnp.sum(m(ids) ** 2))(model)
    optimizer.update(model, grads)
    g_hidden, g_embed = np.asarray(grads["hidden"]["kernel"][...]), np.asarray(grads["embed"]["embedding"][...])
    np.testing.assert_allclose(model.hidden.kernel[...], before["hidden"] - 0.1 * 1 * g_hidden, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.embed.embedding[...], before["embed"] - 0.1 * 4 * g_embed, rtol=1e-5, atol=1e-7)
    # nnx.state trees (paths ending in /value) are found too; a parameter without a role is refused by name
    state = nnx.state(model, nnx.Param)
    updates, _ = tx.update(state, tx.init(state), state)
    assert param_paths.all_paths(updates)[0].endswith("/value")
    with pytest.raises(ConfigError, match="no role for parameter extra/kernel") as info:
        mup.scale_adam_by_mup(table).update({"extra": {"kernel": jnp.ones(2)}}, optax.EmptyState())
    assert "\n" not in str(info.value)
