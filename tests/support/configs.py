"""The configurations tests train: tiny enough for a step in milliseconds."""

import dataclasses

from frx import presets
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


def tiny_config(workdir=None, **overrides) -> TrainConfig:
    """A ViT small enough for a test step in milliseconds: 16x16 images, 16 tokens, width 32."""
    cfg = TrainConfig(
        name="tiny",
        batch_size=16,
        total_steps=6,
        workdir=None if workdir is None else str(workdir),
        model=ViTConfig(variant="mu/4", width=32, depth=2, num_heads=2, image_size=16, num_classes=4),
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


# The same tiny run as command-line overrides of the demo preset (for `python -m frx train demo`).
TINY_CLI = (
    "--batch_size 16 --model.variant mu/4 --model.width 32 --model.depth 2 --model.num_heads 2 "
    "--model.image_size 16 --model.num_classes 4 --data.synthetic.train_size 256 --data.synthetic.val_size 64 "
    "--data.synthetic.num_shapes 2 --data.synthetic.num_textures 1 --data.threads 1 --schedule.warmup_steps 2 "
    "--log.every_steps 1 --log.progress False --log.plots False --log.tensorboard False"
).split()


def demo_with(**changes):
    """The demo preset with `section__field=value` (or `field=value`) changes, e.g. model__width=64."""
    cfg = presets.get("demo")
    for path, value in changes.items():
        section, _, field = path.partition("__")
        if field:
            cfg = dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **{field: value})})
        else:
            cfg = dataclasses.replace(cfg, **{section: value})
    return cfg
def tiny_contrastive_config(workdir=None, loss: str = "clip", **overrides) -> TrainConfig:
    """A two-tower model small enough for test steps in milliseconds: 8x8 images (4 patches), 12-byte
    captions of the embedded captioned set (2 shapes x 2 colours x 2 textures, 2 combinations held out)."""
    import math

    from frx.config import ContrastiveConfig, TextConfig, TwoTowerConfig

    siglip = loss == "siglip"
    pp = "decode|tokenize(12)|value_range(-1,1)"
    cfg = tiny_config(
        workdir, name=f"tiny_{loss}", task="contrastive",
        model=TwoTowerConfig(
            image=ViTConfig(variant="mu/4", width=16, depth=1, num_heads=2, image_size=8, num_classes=0,
                            head_zeroinit=False),
            text=TextConfig(width=16, depth=1, num_heads=2, context_length=12, causal=not siglip,
                            pool="last" if siglip else "eos"),
            embed_dim=8,
            **(dict(logit_scale_init=math.log(10), logit_scale_max=None, logit_bias_init=-10.0) if siglip else {})),
        data=DataConfig(source="synthetic_captions", pp_train=pp, pp_eval=pp, threads=1,
                        synthetic=SyntheticConfig(train_size=128, val_size=32, num_shapes=2, num_colours=2,
                                                  num_textures=2, holdout=3)),
        contrastive=ContrastiveConfig(loss=loss),
    )
    cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, splits=("val", "heldout", "seen")))
    return dataclasses.replace(cfg, **overrides)


TINY_CONTRASTIVE_CLI = (
    "--batch_size 16 --model.image.variant mu/4 --model.image.width 16 --model.image.depth 1 "
    "--model.image.num_heads 2 --model.image.image_size 8 --model.text.width 16 --model.text.depth 1 "
    "--model.text.num_heads 2 --model.text.context_length 12 --model.embed_dim 8 "
    "--data.pp_train decode|tokenize(12)|value_range(-1,1) --data.pp_eval decode|tokenize(12)|value_range(-1,1) "
    "--data.synthetic.train_size 128 --data.synthetic.val_size 32 --data.synthetic.num_shapes 2 "
    "--data.synthetic.num_colours 2 --data.synthetic.num_textures 2 --data.synthetic.holdout 3 --data.threads 1 "
    "--fewshot.source none --schedule.warmup_steps 2 --log.every_steps 1 --log.progress False --log.plots False "
    "--log.tensorboard False"
).split()
"""`frx train clip_demo` / `siglip_demo` overrides that make them tiny_contrastive_config-sized."""
