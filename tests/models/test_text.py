"""The text tower: big_vision's parameter count and inits, the causal mask, and each pooling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from frx.config import TextConfig
from frx.models import text

CFG = TextConfig(width=32, depth=2, num_heads=4, vocab_size=259, context_length=8)


def _tower(cfg=CFG, embed_dim=16):
    return text.build(cfg, embed_dim, nnx.Rngs(params=0))


def test_parameter_count_is_embeddings_blocks_norm_and_projection():
    w, m, v, n, e = 32, 128, 259, 8, 16
    block = 4 * (w * w + w) + (w * m + m) + (m * w + w) + 4 * w  # q, k, v, out; fc1, fc2; two LayerNorms
    expected = v * w + n * w + 2 * block + 2 * w + (w * e + e)
    tower = nnx.eval_shape(_tower)
    assert sum(x.size for x in jax.tree.leaves(nnx.state(tower, nnx.Param))) == expected


def test_embeddings_start_as_flax_embed_draws_them():
    tower = text.build(TextConfig(width=64, depth=1, num_heads=4, vocab_size=4096, context_length=64), 8,
                       nnx.Rngs(params=0))
    assert float(jnp.std(tower.embedding[...])) == pytest.approx(64**-0.5, rel=0.03)  # N(0, 1/width)
    assert float(jnp.std(tower.pos_embedding[...])) == pytest.approx(64**-0.5, rel=0.1)
    assert float(jnp.mean(tower.head.bias[...] ** 2)) == 0.0


def _tokens():
    return jnp.array([[5, 6, 7, 1, 0, 0, 0, 0], [9, 1, 0, 0, 0, 0, 0, 0], [5, 6, 7, 8, 9, 10, 11, 12]], jnp.int32)


@pytest.mark.parametrize("causal", [True, False])
def test_a_causal_tower_never_looks_ahead(causal):
    tower = _tower(TextConfig(**{**CFG.__dict__, "causal": causal}))
    tokens = _tokens()
    changed = tokens.at[:, 4:].set(77)
    before, after = tower.encode(tokens)["tokens"], tower.encode(changed)["tokens"]
    np.testing.assert_array_equal(before[:, :4] == after[:, :4], causal)  # only a bidirectional tower sees it


@pytest.mark.parametrize("pool, expected_positions", [("eos", [3, 1, 7]), ("last", [7, 7, 7]), ("first", [0, 0, 0])])
def test_pooling_reads_the_first_eos_the_last_or_the_first_position(pool, expected_positions):
    tower = _tower(TextConfig(**{**CFG.__dict__, "pool": pool, "causal": pool != "first"}))
    encoded = tower.encode(_tokens())
    expected = encoded["tokens"][jnp.arange(3), jnp.array(expected_positions)]
    np.testing.assert_array_equal(encoded["pooled"], expected)  # row 3 has no eos: its last position


def test_captions_of_another_length_are_refused():
    with pytest.raises(ValueError, match="context_length is 8"):
        _tower()(jnp.zeros((2, 9), jnp.int32))
