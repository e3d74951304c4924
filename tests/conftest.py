"""Test set-up: 8 fake CPU devices (so sharding is always exercised) and tiny models."""

import os

# Must happen before JAX initialises its backend.
os.environ.setdefault("JAX_NUM_CPU_DEVICES", "8")
os.environ.setdefault("FRX_LAUNCHED", "1")  # CLI calls made in-process must not re-exec

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", int(os.environ["JAX_NUM_CPU_DEVICES"]))

import dataclasses  # noqa: E402

import pytest  # noqa: E402

from frx.config import (CheckpointConfig, DataConfig, EvalConfig, LogConfig, ModelConfig,  # noqa: E402
                        OptimConfig, ScheduleConfig, SyntheticConfig, TrainConfig)


def tiny_config(workdir=None, **overrides) -> TrainConfig:
    """A ViT small enough for a test step in milliseconds: 16x16 images, 16 tokens, width 32."""
    cfg = TrainConfig(
        name="tiny",
        batch_size=16,
        total_steps=6,
        workdir=None if workdir is None else str(workdir),
        model=ModelConfig(variant="mu/4", width=32, depth=2, num_heads=2, image_size=16, num_classes=4),
        data=DataConfig(
            source="synthetic",
            synthetic=SyntheticConfig(train_size=256, val_size=64, num_shapes=2, num_colours=2, num_textures=1),
            pp_train="decode|flip_lr|value_range(-1,1)",
            pp_eval="decode|value_range(-1,1)",
            threads=1,
        ),
        optim=OptimConfig(lr=1e-3, wd=1e-4),
        schedule=ScheduleConfig(decay="cosine", warmup_steps=2),
        ckpt=CheckpointConfig(every_steps=3, async_save=False),
        eval=EvalConfig(every_steps=3, splits=("val",)),
        log=LogConfig(every_steps=1, tensorboard=False, progress=False, plots=False),
    )
    return dataclasses.replace(cfg, **overrides)


@pytest.fixture
def tiny():
    return tiny_config


@pytest.fixture(scope="session")
def photo():
    """A real photograph shipped with matplotlib (Grace Hopper, 600x512 JPEG), as uint8 RGB."""
    import numpy as np
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB"))
