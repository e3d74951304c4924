"""frx.flops: the analytic count against a hand count and against XLA's cost analysis of the compiled step."""

import dataclasses

import pytest

from frx import flops
from frx.config import TextConfig, TwoTowerConfig, ViTConfig
from tests.support.configs import tiny_config


def test_vit_forward_macs_by_hand():
    # ViT-B/16 at 224: 196 patches, 12 blocks of width 768 and MLP 3072, 1000 classes.
    cfg = ViTConfig(variant="B/16")
    n, d, m = 196, 768, 3072
    expected = n * 16 * 16 * 3 * d + 12 * (n * (4 * d * d + 2 * d * m) + 2 * n * n * d) + d * 1000
    assert flops.vit_forward_macs(cfg) == expected
    # timm's model card of vit_base_patch16_224 (class token: 197 tokens) says 17.6 GMACs
    assert flops.vit_forward_macs(dataclasses.replace(cfg, pool="tok")) / 1e9 == pytest.approx(17.6, abs=0.05)


def test_class_token_map_head_and_pre_logits_add_their_matmuls():
    gap = ViTConfig(variant="S/16")
    tok = flops.vit_forward_macs(dataclasses.replace(gap, pool="tok")) - flops.vit_forward_macs(gap)
    # one more token through 12 blocks: its projections and MLP, plus its row and column of attention
    d, m, n = 384, 1536, 196
    assert tok == 12 * ((4 * d * d + 2 * d * m) + 2 * ((n + 1) ** 2 - n**2) * d)
    rep = flops.vit_forward_macs(dataclasses.replace(gap, rep_size=-1)) - flops.vit_forward_macs(gap)
    assert rep == d * d
    assert flops.vit_forward_macs(dataclasses.replace(gap, pool="map")) > flops.vit_forward_macs(gap)


def test_two_towers_add_the_text_tower_and_the_similarity_matrix():
    model = TwoTowerConfig(image=ViTConfig(variant="mu/4", width=32, depth=1, num_heads=2, image_size=16,
                                           num_classes=0, head_zeroinit=False),
                           text=TextConfig(width=32, depth=1, num_heads=2, context_length=8), embed_dim=16)
    image = flops.vit_forward_macs(model.image_tower())
    text = 8 * (4 * 32 * 32 + 2 * 32 * 128) + 2 * 8 * 8 * 32 + 32 * 16
    assert flops.forward_macs(model, 4) == 4 * (image + text) + 4 * 4 * 16


def _xla_flops(cfg):
    from frx import aot, sharding

    compiled, _, _ = aot.compile_train_step(cfg, sharding.make_mesh(cfg.mesh))
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
    import jax

    return float(analysis["flops"]) * jax.device_count()  # the analysis is of one device's program


@pytest.mark.parametrize("model", [
    ViTConfig(variant="mu/4", width=128, depth=2, mlp_dim=512, num_heads=4, image_size=32, num_classes=4),
    ViTConfig(variant="mu/4", width=128, depth=1, mlp_dim=512, num_heads=4, image_size=32, num_classes=4,
              pool="map", rep_size=-1),
])
def test_train_step_flops_match_xla_cost_analysis(model):
    """XLA counts 2 FLOPs per MAC of every dot plus the elementwise work (norms, softmax, Adam); with
    matmuls dominating, the 6 x MACs model count must land within a few percent of it."""
    cfg = tiny_config(batch_size=16, model=model)
    ratio = _xla_flops(cfg) / flops.train_step_flops(cfg)
    assert 0.97 < ratio < 1.10, ratio


def test_two_tower_step_flops_match_xla_cost_analysis():
    from frx import presets

    base = presets.get("clip_demo")
    model = dataclasses.replace(
        base.model, embed_dim=64,
        image=dataclasses.replace(base.model.image, variant="mu/4", width=128, depth=1, mlp_dim=512, num_heads=4),
        text=dataclasses.replace(base.model.text, width=128, depth=1, mlp_dim=512, num_heads=4))
    cfg = dataclasses.replace(base, batch_size=16, model=model)
    ratio = _xla_flops(cfg) / flops.train_step_flops(cfg)
    assert 0.97 < ratio < 1.10, ratio
