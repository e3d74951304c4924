"""Mesh from config, logical axes and rule presets, and the acceptance checks of scale-out: FSDP,
data x FSDP and tensor sharding train exactly like one device, and FSDP holds 1/8 of the bytes."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from frx import models, param_paths, sharding
from frx import state as state_lib
from frx import train as train_lib
from frx.config import ConfigError, MeshConfig, ViTConfig, validate
from frx.models import vit
from tests.support.configs import demo_with, tiny_config
from tests.support.fixed_batches import train_steps

# ---------------------------------------------------------------------------------------------- mesh


def test_mesh_sizes_resolve_minus_one_and_keep_tensor_innermost():
    assert sharding.get_mesh_shape(MeshConfig(fsdp=4), 8) == (2, 4, 1)
    assert sharding.get_mesh_shape(MeshConfig(data=2, fsdp=-1, tensor=2), 8) == (2, 2, 2)
    assert sharding.get_mesh_shape(MeshConfig(data=1), 8) == (1, 1, 1)
    mesh = sharding.make_mesh(MeshConfig(data=2, fsdp=2, tensor=2))
    assert mesh.axis_names == ("data", "fsdp", "tensor")
    ids = np.vectorize(lambda d: d.id)(mesh.devices)
    # Neighbouring devices share a tensor group, then an fsdp group (so on a real host, the fast links).
    np.testing.assert_array_equal(ids.reshape(-1), np.arange(8))


class _SliceDevice:
    """A CPU device that claims to sit in TPU slice `slice_index` (multi-slice mesh layout)."""

    def __init__(self, device, slice_index):
        self._device, self.slice_index = device, slice_index

    def __getattr__(self, name):
        return getattr(self._device, name)


def test_with_several_slices_the_data_axis_spans_them_and_fsdp_stays_inside_one():
    devices = [_SliceDevice(d, d.id // 4) for d in jax.devices()]  # 2 slices of 4
    mesh = sharding.make_mesh(MeshConfig(fsdp=2), devices=devices)
    assert dict(mesh.shape) == {"data": 4, "fsdp": 2, "tensor": 1}
    slices = np.vectorize(lambda d: d.slice_index)(mesh.devices)[:, :, 0]
    assert all(len(set(row)) == 1 for row in slices)  # each fsdp group within one slice
    assert set(slices[:, 0]) == {0, 1}
    with pytest.raises(ConfigError, match="multiple of the 2 slices"):
        sharding.make_mesh(MeshConfig(data=1, fsdp=8), devices=devices)


def test_mesh_errors_name_the_fix():
    with pytest.raises(ConfigError, match="multiple of 3 devices"):
        sharding.get_mesh_shape(MeshConfig(fsdp=3), 8)
    with pytest.raises(ConfigError, match="needs 16 devices"):
        sharding.get_mesh_shape(MeshConfig(data=2, fsdp=8), 8)
    with pytest.raises(ConfigError, match="only one mesh axis"):
        validate(tiny_config(mesh=MeshConfig(data=-1, fsdp=-1)))
    with pytest.raises(ConfigError, match="--mesh.rules fsdp"):
        validate(tiny_config(mesh=MeshConfig(fsdp=2, rules="dp")))
    with pytest.raises(ConfigError, match="mesh.tensor must be -1 .* or positive"):
        validate(tiny_config(mesh=MeshConfig(tensor=0)))
    mesh = sharding.make_mesh(MeshConfig(fsdp=8))
    with pytest.raises(ConfigError, match="multiple of 16"):
        sharding.check_batch(tiny_config(batch_size=24, grad_accum=2), mesh)


def test_auto_rules_follow_the_mesh():
    auto = MeshConfig()
    assert sharding.resolve_rules(auto, sharding.make_mesh(MeshConfig(data=8))) == "dp"
    assert sharding.resolve_rules(auto, sharding.make_mesh(MeshConfig(fsdp=8))) == "fsdp"
    assert sharding.resolve_rules(auto, sharding.make_mesh(MeshConfig(fsdp=4, tensor=2))) == "tensor"


# ---------------------------------------------------------------------------------------------- logical axes


@pytest.mark.parametrize("overrides", [
    dict(pool="gap", rep_size=-1),
    dict(pool="tok", posemb="learn"),
    dict(pool="map", rep_size=16),
])
def test_every_vit_parameter_has_logical_axes_of_its_rank(overrides):
    cfg = ViTConfig(variant="mu/4", width=32, depth=2, num_heads=2, image_size=16, num_classes=10, **overrides)
    _, params = state_lib.abstract_model(cfg)
    names = sharding.logical_axes(params, models.logical_axes_rules(cfg))
    leaves = jax.tree.leaves(params)
    named = jax.tree.leaves(names, is_leaf=lambda x: isinstance(x, tuple))
    assert len(leaves) == len(named)
    for leaf, axes in zip(leaves, named):
        assert len(axes) == leaf.ndim
    assert names["blocks"][1]["attn"]["out"]["kernel"] == ("heads", "head_dim", "embed")
    assert names["head"]["kernel"] == ("embed", "classes")


def test_a_parameter_without_a_rule_is_an_error():
    with pytest.raises(ValueError, match="weird/thing has no logical axis names"):
        sharding.logical_axes({"weird": {"thing": jnp.zeros((3, 3))}}, vit.LOGICAL_AXES)
    with pytest.raises(ValueError, match="has shape"):
        sharding.logical_axes({"head": {"kernel": jnp.zeros((3,))}}, vit.LOGICAL_AXES)


def test_rules_claim_axes_in_order_and_fall_through_when_a_size_does_not_divide():
    sizes = {"data": 2, "fsdp": 4, "tensor": 2}
    fsdp, tensor = sharding.RULES["fsdp"], sharding.RULES["tensor"]
    assert sharding.logical_to_spec((64, 256), ("embed", "mlp"), fsdp, sizes) == P("fsdp")
    assert sharding.logical_to_spec((64, 256), ("embed", "mlp"), tensor, sizes) == P("fsdp", "tensor")
    assert sharding.logical_to_spec((64, 3, 16), ("embed", "heads", "head_dim"), tensor, sizes) == P("fsdp")
    # A width the fsdp axis does not divide: the MLP axis takes it instead.
    assert sharding.logical_to_spec((30, 256), ("embed", "mlp"), fsdp, sizes) == P(None, "fsdp")
    # A huge class head is split over both axes; a bias with no fitting axis stays replicated.
    assert sharding.logical_to_spec((64, 100_000), ("embed", "classes"), tensor, sizes) == P("fsdp", "tensor")
    assert sharding.logical_to_spec((5,), ("classes",), tensor, sizes) == P()
    assert sharding.logical_to_spec((64, 256), ("embed", "mlp"), sharding.RULES["dp"], sizes) == P()
    # Axes of size 1 are never named (the tensor preset on an fsdp-only mesh is the fsdp preset).
    assert sharding.logical_to_spec((64, 256), ("embed", "mlp"), tensor, {"fsdp": 4, "tensor": 1}) == P("fsdp")


def test_the_classes_rules_split_a_big_heads_classes_over_every_device_and_fall_back_when_they_cannot():
    sizes, rules = {"data": 2, "fsdp": 2, "tensor": 2}, sharding.RULES["classes"]
    every = ("data", "fsdp", "tensor")
    assert sharding.logical_to_spec((64, 424), ("embed", "classes"), rules, sizes) == P(None, every)
    assert sharding.logical_to_spec((424,), ("classes",), rules, sizes) == P(every)
    assert sharding.logical_to_spec((64, 420), ("embed", "classes"), rules, sizes) == P("fsdp")  # 420 % 8 != 0
    assert sharding.logical_to_spec((64, 256), ("embed", "mlp"), rules, sizes) == P("fsdp")  # the rest: fsdp
    assert sharding.logical_to_spec((64, 424), ("embed", "classes"), rules, {"data": 8}) == P(None, "data")


def test_optimizer_state_follows_the_parameters_even_with_frozen_parameters():
    cfg = tiny_config(mesh=MeshConfig(fsdp=8))
    cfg = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, frozen=("embedding/.*",)))
    run = train_lib.setup(cfg)
    spec = lambda s: s.spec  # noqa: E731
    params = jax.tree.map(spec, run.spec.state_sharding["params"])
    assert params["blocks"][0]["mlp"]["fc1"]["kernel"] == P("fsdp")
    opt = [(param_paths.path_str(kp), s.spec) for kp, s in jax.tree_util.tree_leaves_with_path(run.spec.state_sharding["opt"])]
    assert [spec for path, spec in opt if path.endswith("blocks/0/mlp/fc1/kernel")] == [P("fsdp")] * 2  # mu, nu
    assert not [path for path, _ in opt if "embedding" in path]  # frozen: no optimizer state
    counts = [spec for path, spec in opt if path.endswith("count")]
    assert counts and all(c == P() for c in counts)


def test_activation_constraints_shard_the_batch_only_under_a_mesh():
    x = jnp.ones((16, 4, 8))
    assert sharding.constrain(x, ("batch", None, None)) is x  # no mesh: untouched
    mesh = sharding.make_mesh(MeshConfig(data=2, fsdp=2, tensor=2))
    x = jax.device_put(x, sharding.replicated(mesh))
    fn = jax.jit(sharding.under_mesh(lambda a: (sharding.constrain(a * 2, ("batch", None, None)),
                                                sharding.constrain(a * 3, ("batch", None, "mlp"))), mesh))
    residual, hidden = fn(x)
    assert residual.sharding.spec == P(("data", "fsdp"))
    assert hidden.sharding.spec == P(("data", "fsdp"), None, "tensor")
    np.testing.assert_array_equal(residual, 2 * x)


# ---------------------------------------------------------------------------------------------- acceptance


def _train(cfg, steps=4):
    return train_steps(cfg, steps)


@pytest.mark.slow
def test_fsdp_dp_x_fsdp_and_tensor_train_like_a_single_device():
    """(Pure data parallel == one device is tests/test_step.py.)"""
    base = tiny_config(batch_size=32, schedule=dataclasses.replace(tiny_config().schedule, warmup_steps=0))
    single, losses1 = _train(dataclasses.replace(base, mesh=MeshConfig(data=1)))
    ref = jax.device_get(single["params"])
    meshes = {
        "fsdp": MeshConfig(data=1, fsdp=8),
        "dp x fsdp, accumulating": MeshConfig(data=2, fsdp=4),
        "dp x fsdp x tensor": MeshConfig(data=2, fsdp=2, tensor=2),
    }
    for name, mesh in meshes.items():
        accum = 2 if "accumulating" in name else 1
        state, losses = _train(dataclasses.replace(base, mesh=mesh, grad_accum=accum))
        np.testing.assert_allclose(losses, losses1, rtol=1e-5, err_msg=name)
        for a, b in zip(jax.tree.leaves(jax.device_get(state["params"])), jax.tree.leaves(ref)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=name)
        # The layout asked for is the layout kept across steps (out_shardings + donation).
        fc1 = state["params"]["blocks"][0]["mlp"]["fc1"]["kernel"]
        expected = {"fsdp": P("fsdp"), "dp x fsdp, accumulating": P("fsdp"),
                    "dp x fsdp x tensor": P("fsdp", "tensor")}[name]
        assert fc1.sharding.spec == expected, name
    assert losses1[-1] != losses1[0]  # training moved: the runs are not compared at their init


def test_fsdp_holds_an_eighth_of_the_parameter_and_optimizer_bytes_per_device():
    per_device = {}
    for name, mesh in {"dp": MeshConfig(data=8), "fsdp": MeshConfig(fsdp=8)}.items():
        run = train_lib.setup(tiny_config(mesh=mesh))
        state = run.spec.init_state()
        # Measured from the arrays: the bytes of the shard that device 0 holds.
        per_device[name] = {
            part: sum(x.addressable_shards[0].data.nbytes for x in jax.tree.leaves(state[part]))
            for part in ("params", "opt")
        }
        assert per_device[name]["params"] == sharding.bytes_per_device(state["params"])
    total = sum(x.size * 4 for x in jax.tree.leaves(state_lib.abstract_model(tiny_config().model)[1]))
    assert per_device["dp"]["params"] == total
    for part in ("params", "opt"):
        ratio = per_device["fsdp"][part] / per_device["dp"][part]
        # Only the 4-class head bias (4 floats) cannot be split 8 ways.
        assert 1 / 8 <= ratio < 1 / 8 + 0.002, (part, ratio)


def test_batch_not_divisible_by_devices_is_refused_before_compiling():
    from frx import sharding
    from frx.config import MeshConfig

    mesh = sharding.make_mesh(MeshConfig(data=8))
    with pytest.raises(ConfigError, match="12 is not divisible by 8 data-parallel devices"):
        sharding.check_batch(demo_with(batch_size=12), mesh)
    with pytest.raises(ConfigError, match="= 20 is not divisible by 8 data-parallel devices"):
        sharding.check_batch(demo_with(batch_size=40, grad_accum=2), mesh)
    with pytest.raises(ConfigError, match="only 8 devices are visible"):
        sharding.make_mesh(MeshConfig(data=16))


def test_a_model_declares_the_axes_of_its_own_parameters_and_scalars_are_replicated():
    """A second model's parameters (a learnt temperature, a text embedding) need rules of its own
    module only; a scalar has no axes and stays replicated under every preset."""
    params = {"logit_scale": jnp.zeros(()), "text": {"token_embedding": jnp.zeros((64, 32))},
              "head": {"kernel": jnp.zeros((32, 16)), "bias": jnp.zeros((16,))}}
    rules = ((r"logit_scale", ()), (r"text/token_embedding", ("vocab", "embed"))) + vit.LOGICAL_AXES
    mesh = sharding.make_mesh(MeshConfig(data=1, fsdp=8))
    shardings = sharding.param_shardings(params, mesh, "fsdp", rules)
    assert shardings["logit_scale"].spec == P()
    assert shardings["text"]["token_embedding"].spec == P(None, "fsdp")
    assert shardings["head"]["kernel"].spec == P("fsdp")
