"""`frx.models.layers.run_blocks`: the blocks as a scan and under each rematerialisation policy give
the unrolled loop's loss and gradients, and each policy keeps what it says it keeps."""

import contextlib
import dataclasses
import io
import typing

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.ad_checkpoint import print_saved_residuals

from frx import models
from frx.config import ViTConfig
from frx.config.model import RematPolicy
from frx.models import layers

# depth 3: a scan whose body runs more than once and more than twice
TINY = ViTConfig(variant="mu/4", width=32, depth=3, num_heads=4, image_size=16, num_classes=5, head_zeroinit=False,
                 dtype="float32")
VARIANTS = {"scan": dict(scan=True)} | {f"remat_{p}": dict(remat=True, remat_policy=p) for p in layers.REMAT_POLICIES}


def test_the_configs_policies_are_the_layers_policies():
    assert set(typing.get_args(RematPolicy)) == set(layers.REMAT_POLICIES)


def _loss_and_grads(cfg):
    images = jax.random.uniform(jax.random.PRNGKey(1), (4, 16, 16, 3), minval=-1, maxval=1)
    labels = jnp.arange(4) % 5
    graphdef, params = nnx.split(models.make(cfg, seed=0))

    def loss(params):
        logits = nnx.merge(graphdef, params)(images)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1))

    return jax.jit(jax.value_and_grad(loss))(params)


def _assert_same(result, reference, name: str, *, embedding_tolerance: float = 0.0):
    """Loss and every gradient bitwise equal, except that the patch embedding's gradients may differ by
    `embedding_tolerance` x their largest magnitude."""
    np.testing.assert_array_equal(result[0], reference[0], err_msg=name)
    assert jax.tree.structure(result[1]) == jax.tree.structure(reference[1])  # the same paths: blocks/2/attn/q/kernel
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(result[1])[0], jax.tree.leaves(reference[1])):
        where = f"{name}: {jax.tree_util.keystr(path)}"
        if path[0].key == "embedding":
            assert np.max(np.abs(a - b)) <= embedding_tolerance * np.max(np.abs(b)), where
        else:
            np.testing.assert_array_equal(a, b, err_msg=where)


@pytest.mark.parametrize("dtype", ["float32", pytest.param("bfloat16", marks=pytest.mark.slow)])
def test_scan_and_every_remat_policy_give_the_unrolled_loss_and_gradients(dtype):
    """On the CPU the scan and the recomputation run the same operations on the same values: the loss and
    the gradients of every block, norm and head are bitwise the unrolled model's, in float32 and through
    bfloat16's custom VJPs, and remat is bitwise the scan under every policy. One exception, in float32:
    the patch embedding's gradients (the first block's input gradient contracted with the patches) are
    summed in another order when the blocks are unrolled; they differ by up to 1.8e-7 of their largest
    magnitude (measured), bounded here at 1e-6."""
    cfg = dataclasses.replace(TINY, dtype=dtype)
    unrolled = _loss_and_grads(cfg)
    assert len(unrolled[1]["blocks"]) == 3
    scanned = _loss_and_grads(dataclasses.replace(cfg, scan=True))
    _assert_same(scanned, unrolled, "scan", embedding_tolerance=1e-6 if dtype == "float32" else 0.0)
    for name, change in VARIANTS.items():
        if name != "scan":
            _assert_same(_loss_and_grads(dataclasses.replace(cfg, **change)), scanned, name)


def _saved_by_a_block(policy: str, dtype) -> list[str]:
    """What the backward pass of one checkpointed block keeps besides its arguments, as
    jax.ad_checkpoint.print_saved_residuals describes it: "f32[2,5,128] named 'dense_output'"."""
    graphdef, state = nnx.split(layers.EncoderBlock(32, 128, 4, dtype=dtype, impl="xla", rngs=nnx.Rngs(0)))
    block = jax.checkpoint(lambda s, x: jnp.sum(nnx.merge(graphdef, s)(x)), policy=layers.REMAT_POLICIES[policy])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_saved_residuals(block, state, jnp.ones((2, 5, 32)))
    return sorted(line.split(" from ")[0] for line in out.getvalue().splitlines() if "from the argument" not in line)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_each_policy_keeps_its_own_residuals_also_through_the_custom_vjps(dtype):
    """Batch 2, 5 tokens, width 32, 4 heads, MLP 128. The bfloat16 dense layers run through a custom VJP
    whose dot `checkpoint_dots` cannot see: they are kept by name, so both dtypes keep the same values."""
    d = "f32" if dtype == jnp.float32 else "bf16"
    dense = [f"{d}[2,5,32] named 'dense_output'"] * 4 + [f"{d}[2,5,128] named 'dense_output'"]  # q k v out, fc1
    attention = ["f32[8,5,5] output of dot_general", "f32[8,5,8] output of dot_general"]  # logits, probs @ v
    assert _saved_by_a_block("full", dtype) == []
    assert _saved_by_a_block("dots_no_batch", dtype) == sorted(dense)
    assert _saved_by_a_block("dots", dtype) == sorted(dense + attention)


def test_the_policies_order_the_compiled_memory_of_a_vits_gradient():
    """The policy reaches the compiled program: temporaries of the gradient of a depth-3 ViT at 65 tokens,
    where attention scores (4 heads x 65 x 65) outweigh the dense outputs (4 x 32 + 128 per token)."""
    images = jax.ShapeDtypeStruct((16, 32, 32, 3), jnp.float32)

    def temp_bytes(**change):
        cfg = dataclasses.replace(TINY, image_size=32, **change)
        graphdef, params = nnx.split(models.make(cfg, seed=0))
        grad = jax.jit(jax.grad(lambda p, x: jnp.sum(nnx.merge(graphdef, p)(x) ** 2)))
        return grad.lower(params, images).compile().memory_analysis().temp_size_in_bytes

    sizes = {name: temp_bytes(**change) for name, change in VARIANTS.items()}
    assert sizes["remat_full"] < sizes["remat_dots_no_batch"] < sizes["remat_dots"] < sizes["scan"], sizes
