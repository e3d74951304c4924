"""big_vision's "Better plain ViT baselines for ImageNet-1k" (arXiv 2205.01580;
big_vision/configs/vit_s16_i1k.py), reproduced field by field.

    frx train vit_s16_i1k --data.root /data/imagenet/train --data.val_root /data/imagenet/val
    frx train vit_s16_i1k --data.source tfds --data.root /data/tfds   # imagenet2012 as TFDS ArrayRecord
        # (also evaluates imagenet_v2 and imagenet2012_real when they are prepared in the same data dir)
        # ViT-S/16, 90 epochs: 76.5% top-1 on ImageNet val (about 6.5 h on a TPUv3-8)
    frx train vit_s16_i1k_linear --data.root ...   # linear head: the 76.7% variant
    frx train vit_b16_i1k --data.root ...          # ViT-B/16 with the same recipe

Recipe: batch 1024; 90 epochs of the 99% training split (the other 1% is "minival");
Adam (b1 0.9, b2 0.999, first moment in bfloat16), lr 1e-3, decoupled wd 1e-4 on kernels, clip 1.0,
10k warmup steps from 0 then cosine to 0; GAP, sincos2d, tanh pre-logits (rep_size); inception crop,
flip, RandAugment(2, 10), mixup 0.2; evaluation every 2500 steps.
"""

from __future__ import annotations

import dataclasses

from frx.config import (
    CheckpointConfig,
    DataConfig,
    EvalConfig,
    LogConfig,
    OptimConfig,
    ScheduleConfig,
    TrainConfig,
    ViTConfig,
)

I1K_TRAIN = "decode_jpeg_and_inception_crop(224)|flip_lr|randaug(2, 10)|value_range(-1, 1)"
I1K_EVAL = "decode|resize_small(256)|central_crop(224)|value_range(-1, 1)"


def vit_s16_i1k() -> TrainConfig:
    """big_vision ViT-S/16 ImageNet-1k recipe, 90 epochs, MLP head: 76.5% top-1."""
    return TrainConfig(
        name="vit_s16_i1k",
        seed=0,
        batch_size=1024,
        total_epochs=90,
        model=ViTConfig(variant="S/16", image_size=224, num_classes=1000, pool="gap", posemb="sincos2d", rep_size=-1),
        data=DataConfig(source="folder", minival_fraction=0.01, pp_train=I1K_TRAIN, pp_eval=I1K_EVAL, mixup_p=0.2,
                        threads=8),
        optim=OptimConfig(name="adam", lr=1e-3, wd=1e-4, mu_dtype="bfloat16", grad_clip_norm=1.0),
        schedule=ScheduleConfig(decay="cosine", warmup_steps=10_000),
        ckpt=CheckpointConfig(every_steps=1000),
        eval=EvalConfig(every_steps=2500, batch_size=1024, splits=("val", "minival", "v2", "real")),
        log=LogConfig(every_steps=50),
    )


def vit_s16_i1k_linear() -> TrainConfig:
    """The same recipe with a linear head (rep_size off): the paper's 76.7% ablation."""
    base = vit_s16_i1k()
    return dataclasses.replace(base, name="vit_s16_i1k_linear", model=dataclasses.replace(base.model, rep_size=0))


def vit_b16_i1k() -> TrainConfig:
    """The same recipe for ViT-B/16."""
    base = vit_s16_i1k()
    return dataclasses.replace(base, name="vit_b16_i1k", model=dataclasses.replace(base.model, variant="B/16"))
