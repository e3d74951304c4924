"""The two-tower model: the image tower is the ViT at the ViT's own parameter paths (a classifier can
start from it), every parameter has logical axes, embeddings are unit vectors, the scale and bias start
where CLIP and SigLIP start, and per-block rematerialisation leaves values and gradients unchanged."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from frx import models, param_paths, sharding
from frx import state as state_lib
from frx.config import TextConfig, TwoTowerConfig, ViTConfig

IMAGE = ViTConfig(variant="mu/4", width=32, depth=2, num_heads=2, image_size=16, num_classes=0, head_zeroinit=False,
                  pool="map", posemb="learn")
CFG = TwoTowerConfig(image=IMAGE, text=TextConfig(width=16, depth=2, num_heads=2, context_length=8), embed_dim=12)


def _paths(cfg) -> dict[str, tuple]:
    params = state_lib.abstract_model(cfg)[1]
    return {path: leaf.shape for path, leaf in zip(param_paths.all_paths(params), jax.tree.leaves(params))}


def _model_fn(cfg):
    """(model applied to (images, tokens)) jitted, on freshly initialised parameters."""
    graphdef, _ = state_lib.abstract_model(cfg)
    params = jax.jit(lambda: state_lib.init_params(cfg, 0))()
    return graphdef, params


def test_the_image_tower_has_a_vit_classifiers_parameter_paths_under_image():
    tower = {p.removeprefix("image/"): s for p, s in _paths(CFG).items() if p.startswith("image/")}
    classifier = _paths(dataclasses.replace(IMAGE, num_classes=10))
    assert tower.keys() == classifier.keys()
    assert {p for p in tower if tower[p] != classifier[p]} == {"head/kernel", "head/bias"}  # the projection
    assert tower["head/kernel"] == (32, 12)


def test_every_parameter_has_logical_axes_and_the_scalars_none():
    params = state_lib.abstract_model(dataclasses.replace(CFG, logit_bias_init=-10.0))[1]
    axes = sharding.logical_axes(params, models.logical_axes_rules(CFG))
    assert axes["logit_scale"] == () and axes["logit_bias"] == ()
    assert axes["text"]["embedding"] == ("vocab", "embed")
    assert axes["image"]["head"]["kernel"] == ("embed", "embed_proj")


def _batch():
    images = jax.random.uniform(jax.random.PRNGKey(1), (4, 16, 16, 3), minval=-1, maxval=1)
    tokens = jax.random.randint(jax.random.PRNGKey(2), (4, 8), 3, 259)
    return images, tokens


def _outputs(cfg):
    graphdef, params = _model_fn(cfg)
    return jax.jit(lambda p, *batch: nnx.merge(graphdef, p)(*batch))(params, *_batch())


def test_embeddings_are_unit_vectors_and_scale_and_bias_start_at_their_inits():
    clip = _outputs(CFG)
    np.testing.assert_allclose(jnp.linalg.norm(clip["zimg"], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(jnp.linalg.norm(clip["ztxt"], axis=1), 1.0, rtol=1e-6)
    assert float(clip["scale"]) == pytest.approx(1 / 0.07, rel=1e-6) and float(clip["bias"]) == 0.0
    siglip_cfg = dataclasses.replace(CFG, logit_scale_init=math.log(10), logit_scale_max=None, logit_bias_init=-10.0)
    params = state_lib.init_params(siglip_cfg, 0)
    assert float(jnp.exp(params["logit_scale"])) == pytest.approx(10.0, rel=1e-6) and params["logit_bias"] == -10.0
    assert "logit_bias" not in _paths(CFG)
    assert models.param_bounds(CFG) == (("logit_scale", 0.0, math.log(100)),) and models.param_bounds(siglip_cfg) == ()


def test_rematerialised_blocks_give_identical_loss_and_gradients():
    images, tokens = _batch()
    cfg = dataclasses.replace(CFG, image=dataclasses.replace(IMAGE, depth=1),
                              text=dataclasses.replace(CFG.text, depth=1))

    def loss_and_grads(cfg):
        graphdef, params = _model_fn(cfg)

        def loss(params):
            out = nnx.merge(graphdef, params)(images, tokens)
            return jnp.sum(out["scale"] * out["zimg"] @ out["ztxt"].T * jnp.arange(4.0))

        return jax.jit(jax.value_and_grad(loss))(params)

    plain, remat = loss_and_grads(cfg), loss_and_grads(dataclasses.replace(cfg, remat=True))
    both = dataclasses.replace(cfg, remat=True)
    assert both.image_tower().remat and both.text_tower().remat
    # the recomputation runs the same operations: on the CPU the bits are identical
    np.testing.assert_array_equal(remat[0], plain[0])
    for a, b in zip(jax.tree.leaves(remat[1]), jax.tree.leaves(plain[1])):
        np.testing.assert_array_equal(a, b)
    scanned = dataclasses.replace(cfg, scan=True, remat_policy="dots_no_batch", image=dataclasses.replace(
        cfg.image, remat=True))  # the image tower rematerialised under the shared policy, the text tower scanned
    assert scanned.text_tower().scan and not scanned.text_tower().remat
    assert scanned.image_tower().remat_policy == "dots_no_batch"
    scanned = loss_and_grads(scanned)
    np.testing.assert_array_equal(scanned[0], plain[0])
    for a, b in zip(jax.tree.leaves(scanned[1]), jax.tree.leaves(plain[1])):
        np.testing.assert_array_equal(a, b)
