"""Small CPU recipes on data that ships with frx.

    frx train demo      # < 2 min on 2 idle CPU cores; ~74% validation accuracy on 16 classes (chance 6.25%)
    frx train digits    # scikit-learn's 8x8 digits upsampled to 32x32; ~1 min
"""

from __future__ import annotations

from frx.config import (
    CheckpointConfig,
    DataConfig,
    EvalConfig,
    LogConfig,
    OptimConfig,
    ScheduleConfig,
    SyntheticConfig,
    TrainConfig,
    ViTConfig,
)


def demo() -> TrainConfig:
    """Tiny ViT on the embedded shapes x colours x textures set (16 classes, 32x32), a few CPU minutes."""
    return TrainConfig(
        name="demo",
        batch_size=128,
        total_steps=800,
        # depth 2, not 4: the same accuracy at half the block FLOPs (800 steps, seed 0: 74.55% against 74.40%;
        # depth 3 gave 76.25% but takes ~2 min 15 s; measured 2026-12-06, issue 12's "demo in <= 2 minutes")
        model=ViTConfig(variant="Ti/4", width=96, depth=2, num_heads=4, image_size=32, num_classes=16),  # dtype auto
        data=DataConfig(
            source="synthetic",
            synthetic=SyntheticConfig(train_size=20_000, val_size=2_000, num_shapes=4, num_colours=2, num_textures=2),
            pp_train="decode|flip_lr|value_range(-1,1)",
            pp_eval="decode|value_range(-1,1)",
        ),
        optim=OptimConfig(lr=2e-3, wd=1e-4),
        schedule=ScheduleConfig(decay="cosine", warmup_steps=60),
        ckpt=CheckpointConfig(every_steps=200),
        eval=EvalConfig(every_steps=100, splits=("val",)),
        log=LogConfig(every_steps=25),
    )


def digits() -> TrainConfig:
    """Tiny ViT on scikit-learn's handwritten digits (1,437 train / 360 val images, 10 classes)."""
    return TrainConfig(
        name="digits",
        batch_size=128,
        total_steps=400,
        model=ViTConfig(variant="Ti/4", width=128, depth=4, num_heads=4, image_size=32, num_classes=10),
        data=DataConfig(
            source="digits",
            pp_train="decode|resize(36)|random_resized_crop(32, 0.6)|value_range(-1,1)",
            pp_eval="decode|resize(32)|value_range(-1,1)",
        ),
        optim=OptimConfig(lr=2e-3, wd=1e-4),
        schedule=ScheduleConfig(decay="cosine", warmup_steps=40),
        ckpt=CheckpointConfig(every_steps=200),
        eval=EvalConfig(every_steps=100, splits=("val",)),
        log=LogConfig(every_steps=25),
    )
