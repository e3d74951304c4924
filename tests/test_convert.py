"""big_vision checkpoints into frx: names and shapes written by linen itself, logits equal."""

import numpy as np
import pytest

from frx import convert
from frx.config import ConfigError, ViTConfig
from tests.support import big_vision_reference as bv

SIZES = dict(patch=4, width=32, depth=2, mlp_dim=128, num_heads=2)


def frx_config(**kw) -> ViTConfig:
    kw = {"pool": "gap", "posemb": "learn", "rep_size": 0, "num_classes": 5, **kw}
    return ViTConfig(variant="mu/4", width=32, depth=2, num_heads=2, image_size=16, **kw)


def reference(pool="gap", posemb="learn", rep_size=0, num_classes=5, seed=0):
    model = bv.ViT(num_classes=num_classes, posemb=posemb, pool=pool, rep_size=rep_size, **SIZES)
    return model, bv.init(model, 16, seed)


def frx_logits(model, x) -> np.ndarray:
    from flax import nnx

    return np.asarray(nnx.jit(lambda m, x: m(x))(model, x))


def images(n=4, seed=1):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 16, 16, 3)).astype(np.float32)


@pytest.mark.parametrize("pool,posemb,rep_size", [("gap", "sincos2d", 0), ("tok", "learn", 24), ("map", "learn", 0)])
def test_big_vision_checkpoint_gives_the_same_logits(tmp_path, pool, posemb, rep_size):
    model, params = reference(pool, posemb, rep_size)
    written = bv.save_npz(tmp_path / "bv.npz", params)
    assert ("params/cls" in written) == (pool == "tok") and ("params/pos_embedding" in written) == (posemb == "learn")
    frx_model = convert.from_big_vision(str(tmp_path / "bv.npz"), frx_config(pool=pool, posemb=posemb, rep_size=rep_size))
    x = images()
    want = bv.logits(model, params, x)
    got = frx_logits(frx_model, x)
    assert np.abs(want).max() > 0.1  # a head that is not all zeros, so the comparison means something
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=0)


def test_every_frx_parameter_has_one_big_vision_name_and_back():
    shapes = convert.param_shapes(frx_config(pool="map", rep_size=8))
    shapes.update(convert.param_shapes(frx_config(pool="tok")))
    names = {convert.big_vision_name(p) for p in shapes}
    assert len(names) == len(shapes)
    assert all(convert.frx_path(convert.big_vision_name(p)) == p for p in shapes)
    assert convert.frx_path("Transformer/encoderblock_1/MultiHeadDotProductAttention_0/out/kernel") == "blocks/1/attn/out/kernel"
    assert convert.frx_path("Transformer/encoderblock_0/Dropout_0/x") is None


def test_old_checkpoint_layouts_load_like_new_ones(tmp_path):
    """A published checkpoint: no "params/" prefix, pre-linen module numbers, the position embedding
    inside the encoder with the class token's row first, and bfloat16 stored as 2-byte void."""
    import ml_dtypes

    model, params = reference("tok", "learn")
    new = bv.save_npz(tmp_path / "new.npz", params, prefix="")
    old = {}
    renames = {"/LayerNorm_1/": "/LayerNorm_2/", "/MultiHeadDotProductAttention_0/": "/MultiHeadDotProductAttention_1/",
               "/MlpBlock_0/": "/MlpBlock_3/"}
    for key, value in new.items():
        if key.startswith("Transformer/encoderblock_"):
            for a, b in renames.items():
                key = key.replace(a, b)
        old[key] = value
    row = np.random.default_rng(3).normal(0, 0.02, (1, 1, 32)).astype(np.float32)
    old["Transformer/posembed_input/pos_embedding"] = np.concatenate([row, old.pop("pos_embedding")], axis=1)
    old["cls"] = new["cls"] - row
    old["head/bias"] = new["head/bias"].astype(ml_dtypes.bfloat16)
    np.savez(tmp_path / "old.npz", **old)

    loaded = convert.read_npz(str(tmp_path / "old.npz"))
    assert sorted(loaded) == sorted(new)
    assert loaded["head/bias"].dtype == np.float32
    np.testing.assert_array_equal(loaded["head/bias"], new["head/bias"].astype(ml_dtypes.bfloat16).astype(np.float32))
    np.testing.assert_array_equal(loaded["pos_embedding"], new["pos_embedding"])
    np.testing.assert_allclose(loaded["cls"], new["cls"], atol=1e-7)
    old_params = convert.big_vision_params(str(tmp_path / "old.npz"), frx_config(pool="tok"))
    new_params = convert.big_vision_params(str(tmp_path / "new.npz"), frx_config(pool="tok"))
    assert sorted(old_params) == sorted(new_params)
    different = [p for p in new_params if old_params[p].tobytes() != new_params[p].tobytes()]
    assert different == ["cls", "head/bias"]  # (cls - row) + row rounds; the bias went through bfloat16


@pytest.mark.parametrize("pool,change,message", [
    ("tok", dict(pool="gap"), "parameter 'cls' (frx cls) has no place in the model config; check model.pool"),
    ("tok", dict(depth=1), "parameter 'Transformer/encoderblock_1/LayerNorm_0/bias' (frx blocks/1/norm1/bias) has no place"),
    ("tok", dict(depth=3), "has no parameter 'Transformer/encoderblock_2/LayerNorm_0/bias' that the model config needs"),
    ("tok", dict(num_classes=7), "parameter 'head/bias' has shape (5,) but the model config needs (7,) for head/bias; "
                                 "check model.num_classes, or keep a fresh head with --init.reset 'head/.*'"),
    ("tok", dict(posemb="sincos2d"), "parameter 'pos_embedding' (frx pos_embedding) has no place"),
    ("tok", dict(rep_size=8), "parameter 'head/kernel' has shape (32, 5) but the model config needs (8, 5) for "
                              "head/kernel; check model.rep_size"),
    ("map", dict(num_heads=4), "parameter 'MAPHead_0/MultiHeadDotProductAttention_0/key/bias' has shape (2, 16) but "
                               "the model config needs (4, 8)"),
])
def test_a_checkpoint_that_does_not_fit_names_its_first_bad_parameter(tmp_path, pool, change, message):
    import dataclasses

    bv.save_npz(tmp_path / "bv.npz", reference(pool, "learn")[1])
    with pytest.raises(ConfigError) as error:
        convert.from_big_vision(str(tmp_path / "bv.npz"), dataclasses.replace(frx_config(pool=pool), **change))
    text = str(error.value)
    assert "\n" not in text and text.startswith(str(tmp_path / "bv.npz") + ": ")
    assert message in text


def test_missing_or_unreadable_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="not found; pass the path of a .npz file"):
        convert.read_npz(str(tmp_path / "nope.npz"))
    (tmp_path / "bad.npz").write_text("not a zip")
    with pytest.raises(ConfigError, match="is not a readable .npz file"):
        convert.read_npz(str(tmp_path / "bad.npz"))


def test_learned_position_embedding_is_resampled_bilinearly_to_a_new_grid():
    # A table linear in the grid coordinates stays linear under bilinear zoom; corners stay put.
    y, x = np.mgrid[:4, :4].astype(np.float32)
    table = np.stack([x, y, x + 2 * y], axis=-1).reshape(1, 16, 3)
    out = convert.resample_position_embedding(table, 64).reshape(8, 8, 3)
    np.testing.assert_allclose(out[0, 0], [0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(out[-1, -1], [3, 3, 9], atol=1e-6)
    np.testing.assert_allclose(out[..., 2], out[..., 0] + 2 * out[..., 1], atol=1e-5)
    notes = []
    fitted = convert.fit_params({"pos_embedding": table}, {"pos_embedding": (1, 64, 3)}, source="x", notes=notes)
    assert fitted["pos_embedding"].shape == (1, 64, 3) and notes == ["resampled pos_embedding from 16 to 64 positions (bilinear)"]
