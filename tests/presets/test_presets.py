"""Presets: frozen, valid, and the big_vision recipe field by field."""

import dataclasses

import pytest

from frx import presets
from frx.config import (
    ConfigError,
    validate,
)
from frx.train import get_durations


def test_every_preset_is_frozen_and_valid():
    for name in presets.names():
        cfg = presets.get(name)
        with pytest.raises(dataclasses.FrozenInstanceError):
            cfg.seed = 1  # type: ignore[misc]
        if cfg.data.source in ("folder", "tar_captions", "tol"):
            cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root="/data/train"))
        validate(cfg)


def test_vit_s16_i1k_preset_is_the_big_vision_recipe():
    cfg = presets.get("vit_s16_i1k")
    assert (cfg.batch_size, cfg.total_epochs, cfg.seed) == (1024, 90, 0)
    assert cfg.model.dims().width == 384 and cfg.model.pre_logits_size == 384
    assert (cfg.model.pool, cfg.model.posemb, cfg.model.head_zeroinit) == ("gap", "sincos2d", True)
    o = cfg.optim
    assert (o.name, o.lr, o.wd, o.b1, o.b2, o.eps, o.mu_dtype, o.grad_clip_norm) == (
        "adam", 1e-3, 1e-4, 0.9, 0.999, 1e-8, "bfloat16", 1.0)
    assert o.wd_mults == ((".*/kernel$", 1.0),)
    assert (cfg.schedule.decay, cfg.schedule.warmup_steps) == ("cosine", 10_000)
    assert cfg.data.mixup_p == 0.2 and "randaug(2, 10)" in cfg.data.pp_train
    assert cfg.data.minival_fraction == 0.01
    # 90 epochs of the 99% split (1,268,355 images) -> 111,477 steps.
    assert get_durations(cfg, 1_268_355).total_steps == 111_477
    assert presets.get("vit_s16_i1k_linear").model.pre_logits_size == 0
    assert presets.get("vit_b16_i1k").model.dims().width == 768


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(ConfigError, match="unknown preset 'vit_z'.*demo"):
        presets.get("vit_z")


def test_clip_b16_is_open_clips_vit_b16_laion400m_recipe():
    """open_clip: docs/PRETRAINED.md, README.md, src/open_clip_train/params.py, model_configs/ViT-B-16.json."""
    import math

    cfg = presets.get("clip_b16")
    assert (cfg.task, cfg.batch_size, cfg.total_examples) == ("contrastive", 32_768, 32 * 400_000_000)
    image, text = cfg.model.image_tower(), cfg.model.text
    assert (image.dims().width, image.dims().depth, image.dims().patch_size, image.image_size) == (768, 12, 16, 224)
    assert (image.pool, image.posemb, image.num_classes) == ("tok", "learn", 512)
    assert (text.width, text.depth, text.num_heads, text.context_length, text.causal, text.pool) == (
        512, 12, 8, 77, True, "eos")
    assert cfg.model.logit_scale_init == pytest.approx(math.log(1 / 0.07))
    assert cfg.model.logit_scale_max == pytest.approx(math.log(100)) and cfg.model.logit_bias_init is None
    o = cfg.optim
    assert (o.name, o.lr, o.b1, o.b2, o.eps, o.grad_clip_norm) == ("adam", 5e-4, 0.9, 0.98, 1e-6, 0.0)
    assert o.wd == pytest.approx(5e-4 * 0.2)  # AdamW's lr * wd in frx's decoupled units
    assert (cfg.schedule.decay, cfg.schedule.warmup_steps) == ("cosine", 2000)
    assert (cfg.contrastive.loss, cfg.contrastive.get_loss_impl()) == ("clip", "gather")


def test_siglip_b16_is_the_sigmoid_recipe():
    import math

    cfg = presets.get("siglip_b16")
    assert (cfg.batch_size, cfg.total_examples) == (32_768, 40_000_000_000)
    image, text = cfg.model.image_tower(), cfg.model.text
    assert (image.dims().width, image.pool, image.num_classes) == (768, "map", 768)
    assert (text.width, text.depth, text.num_heads, text.causal, text.pool) == (768, 12, 12, False, "last")
    assert cfg.model.logit_scale_init == pytest.approx(math.log(10)) and cfg.model.logit_bias_init == -10.0
    assert cfg.model.logit_scale_max is None  # big_vision does not clamp
    o = cfg.optim
    assert (o.lr, o.b2, o.wd, o.grad_clip_norm) == (1e-3, 0.95, 1e-4, 1.0)
    assert (cfg.schedule.decay, cfg.schedule.warmup_steps) == ("cosine", 20_000)
    assert (cfg.contrastive.loss, cfg.contrastive.get_loss_impl()) == ("siglip", "chunked")


def test_extreme_presets_have_many_classes_and_the_tol_one_follows_big_visions_i21k_recipe():
    demo = presets.get("extreme_demo")
    assert demo.task == "extreme" and demo.model.num_classes >= 10_000 and demo.data.source == "taxa"
    assert demo.model.num_classes == demo.data.taxa.num_species + demo.data.taxa.num_families
    tol = presets.get("vit_b16_tol10m")
    # big_vision/configs/proj/flexivit/i21k_sup.py: batch 4096, 90 epochs, Adam (bf16 first moment), lr 1e-3,
    # wd 1e-4, clip 1, 10k warmup + cosine, inception crop + flip + randaug(2, 10), mixup 0.2.
    assert (tol.batch_size, tol.total_epochs, tol.model.dims().width, tol.model.num_classes % 8) == (4096, 90, 768, 0)
    o = tol.optim
    assert (o.name, o.lr, o.wd, o.mu_dtype, o.grad_clip_norm) == ("adam", 1e-3, 1e-4, "bfloat16", 1.0)
    assert (tol.schedule.decay, tol.schedule.warmup_steps, tol.data.mixup_p) == ("cosine", 10_000, 0.2)
    assert "inception_crop(224)|flip_lr|randaug(2, 10)" in tol.data.pp_train
    assert (tol.head.objective, tol.data.source) == ("taxonomic", "tol")
