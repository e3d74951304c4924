"""Image-text recipes: CLIP and SigLIP on the embedded captioned set (CPU minutes) and ViT-B/16 recipes
for webdataset shards.

    frx train clip_demo      # embedded captioned shapes, 2 CPU cores: see docs/clip.md for time and results
    frx train siglip_demo    # the same data and towers with SigLIP's loss, bias and bidirectional text
    frx train clip_b16 --data.root '/data/laion400m/{00000..41455}.tar' --data.val_root '/data/val/{0..3}.tar' \\
        --contrastive.zeroshot_root /data/imagenet/val
    frx train siglip_b16 --data.root ... (same flags)

The demos' numbers (zero-shot top-1 on held-out combinations, retrieval recall, few-shot probes) and
the machine they were measured on are in docs/clip.md. The B/16 recipes have not been run to the end
here; `frx aot` memory rows are in BENCHMARKS.md.

clip_b16 follows open_clip's ViT-B-16 LAION-400M run (docs/PRETRAINED.md: global batch 33,792, here
32,768 so that it divides power-of-two device counts; README: 32 epochs, warmup 2,000;
src/open_clip_train/params.py: AdamW lr 5e-4, b1 0.9, b2 0.98, eps 1e-6, wd 0.2 on every weight of
2+ dims, no gradient clipping, cosine; model_configs/ViT-B-16.json: embed 512, vision 768 x 12 patch 16
at 224, text 512 x 12 with 8 heads and 77 tokens; causal text, eos pooling, class-token vision pooling,
learnt positions; log-scale ln(1/0.07) clamped to [0, ln 100]). frx's decoupled weight decay is not
multiplied by the learning rate, so AdamW's lr * 0.2 is wd = 5e-4 * 0.2 = 1e-4 here. Known differences:
open_clip's ViT has a LayerNorm before its blocks (ln_pre) and a bias-free projection; frx's image head
is the projection, with a bias (big_vision's two towers); images are scaled to [-1, 1] rather than by
OpenAI's mean and std.

siglip_b16 follows SigLIP (Zhai et al. 2023: t' = ln 10, b = -10, Adam b2 0.95, batch 32k, B/16 with
MAP pooling and a 768-wide 12-layer bidirectional text tower, embed 768, 64 tokens) with SigLIP 2's
schedule (arXiv 2502.14786: Adam lr 1e-3, decoupled wd 1e-4, cosine, 20k warmup steps, 40B examples)
and big_vision's unclamped temperature and gradient clipping at 1.0.

Both B/16 recipes tokenize bytes (no vocabulary file) by default; for a BPE or SentencePiece vocabulary
pass its tokenizer.json (docs/clip.md shows the flags).
"""

from __future__ import annotations

import math

from frx.config import (
    CheckpointConfig,
    ContrastiveConfig,
    DataConfig,
    EvalConfig,
    FewshotConfig,
    LogConfig,
    OptimConfig,
    ScheduleConfig,
    SyntheticConfig,
    TextConfig,
    TrainConfig,
    TwoTowerConfig,
    ViTConfig,
)

SIGLIP_SCALE_INIT = math.log(10.0)  # SigLIP: t' = log 10
SIGLIP_BIAS_INIT = -10.0

DEMO_TOKENS = 64
DEMO_PP = f"decode|tokenize({DEMO_TOKENS})|value_range(-1,1)"  # no flip: captions say left and right


def _demo(name: str, *, loss: str, causal: bool, pool: str, scale_init: float, scale_max: float | None,
          bias_init: float | None, b2: float) -> TrainConfig:
    return TrainConfig(
        name=name,
        task="contrastive",
        batch_size=128,
        total_steps=1000,
        model=TwoTowerConfig(
            image=ViTConfig(variant="Ti/4", width=96, depth=4, num_heads=4, image_size=32, num_classes=0,
                            head_zeroinit=False),  # dtype auto: bfloat16 only where the device has bf16 matrix units
            text=TextConfig(width=64, depth=2, num_heads=4, vocab_size=259, context_length=DEMO_TOKENS, causal=causal,
                            pool=pool),
            embed_dim=64, logit_scale_init=scale_init, logit_scale_max=scale_max, logit_bias_init=bias_init),
        data=DataConfig(
            source="synthetic_captions",
            synthetic=SyntheticConfig(train_size=20_000, val_size=512, num_shapes=4, num_colours=4, num_textures=3,
                                      holdout=6),
            pp_train=DEMO_PP,
            pp_eval=DEMO_PP,
        ),
        optim=OptimConfig(lr=2e-3, wd=1e-4, b2=b2, eps=1e-6),
        schedule=ScheduleConfig(decay="cosine", warmup_steps=80),
        contrastive=ContrastiveConfig(loss=loss),
        fewshot=FewshotConfig(source="synthetic", shots=(1, 5, 10), pp="decode|value_range(-1,1)"),
        ckpt=CheckpointConfig(every_steps=250),
        eval=EvalConfig(every_steps=250, splits=("val", "heldout", "seen")),
        log=LogConfig(every_steps=25),
    )


def clip_demo() -> TrainConfig:
    """CLIP on the embedded captioned shapes (held-out combinations for zero-shot), a few CPU minutes."""
    return _demo("clip_demo", loss="clip", causal=True, pool="eos", scale_init=math.log(1 / 0.07),
                 scale_max=math.log(100), bias_init=None, b2=0.98)


def siglip_demo() -> TrainConfig:
    """SigLIP on the embedded captioned shapes (sigmoid loss, learnt bias, bidirectional text)."""
    return _demo("siglip_demo", loss="siglip", causal=False, pool="last", scale_init=SIGLIP_SCALE_INIT,
                 scale_max=None, bias_init=SIGLIP_BIAS_INIT, b2=0.95)


def clip_b16() -> TrainConfig:
    """open_clip's ViT-B/16 LAION-400M recipe on tar shards (batch 32k, 32 epochs of 400M pairs)."""
    tokens = 77
    return TrainConfig(
        name="clip_b16",
        task="contrastive",
        batch_size=32_768,
        total_examples=32 * 400_000_000,
        model=TwoTowerConfig(
            image=ViTConfig(variant="B/16", image_size=224, num_classes=0, pool="tok", posemb="learn",
                            head_zeroinit=False, dtype="bfloat16"),
            text=TextConfig(width=512, depth=12, num_heads=8, vocab_size=259, context_length=tokens, causal=True,
                            pool="eos", dtype="bfloat16"),
            embed_dim=512),
        data=DataConfig(source="tar_captions", minival_fraction=0.0,
                        pp_train=f"decode|random_resized_crop(224, 0.9)|tokenize({tokens})|value_range(-1,1)",
                        pp_eval=f"decode|resize_small(224)|central_crop(224)|tokenize({tokens})|value_range(-1,1)",
                        threads=16),
        optim=OptimConfig(name="adam", lr=5e-4, b1=0.9, b2=0.98, eps=1e-6, wd=1e-4, grad_clip_norm=0.0,
                          wd_mults=((r".*/kernel$", 1.0), (r"text/embedding", 1.0), (r".*pos_embedding", 1.0))),
        schedule=ScheduleConfig(decay="cosine", warmup_steps=2000),
        contrastive=ContrastiveConfig(loss="clip"),
        ckpt=CheckpointConfig(every_steps=1000),
        eval=EvalConfig(every_steps=5000, batch_size=1024, splits=("val",)),
        log=LogConfig(every_steps=50),
    )


def siglip_b16() -> TrainConfig:
    """SigLIP ViT-B/16 recipe on tar shards (batch 32k, sigmoid loss, t' = ln 10, b = -10, 40B examples)."""
    tokens = 64
    return TrainConfig(
        name="siglip_b16",
        task="contrastive",
        batch_size=32_768,
        total_examples=40_000_000_000,
        model=TwoTowerConfig(
            image=ViTConfig(variant="B/16", image_size=224, num_classes=0, pool="map", posemb="learn",
                            head_zeroinit=False, dtype="bfloat16"),
            text=TextConfig(width=768, depth=12, num_heads=12, vocab_size=259, context_length=tokens, causal=False,
                            pool="last", dtype="bfloat16"),
            embed_dim=768, logit_scale_init=SIGLIP_SCALE_INIT, logit_scale_max=None, logit_bias_init=SIGLIP_BIAS_INIT),
        data=DataConfig(source="tar_captions", minival_fraction=0.0,
                        pp_train=f"decode|resize(224)|tokenize({tokens})|value_range(-1,1)",
                        pp_eval=f"decode|resize(224)|tokenize({tokens})|value_range(-1,1)",
                        threads=16),
        optim=OptimConfig(name="adam", lr=1e-3, b1=0.9, b2=0.95, wd=1e-4, grad_clip_norm=1.0),
        schedule=ScheduleConfig(decay="cosine", warmup_steps=20_000),
        contrastive=ContrastiveConfig(loss="siglip"),
        ckpt=CheckpointConfig(every_steps=1000),
        eval=EvalConfig(every_steps=5000, batch_size=1024, splits=("val",)),
        log=LogConfig(every_steps=50),
    )
