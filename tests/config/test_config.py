"""Configs: JSON round trips, and every bad setting refused with one line that names the fix."""

import dataclasses

import pytest

from frx import presets
from frx.config import (
    ConfigError,
    TrainConfig,
    from_dict,
    to_dict,
    validate,
)
from tests.support.configs import demo_with


def test_config_round_trips_through_json():
    for name in presets.names():
        cfg = presets.get(name)
        assert from_dict(TrainConfig, to_dict(cfg)) == cfg


BAD_CONFIGS = [
    (dict(model__num_heads=5), "width 96 is not divisible by num_heads 5"),
    (dict(model__variant="Q/16"), "unknown model variant 'Q/16'"),
    (dict(model__image_size=30), "image_size 30 is not divisible by patch size 4"),
    (dict(model__width=126, model__num_heads=2), "sincos2d position embedding needs a width divisible by 4"),
    (dict(model__num_classes=10), "synthetic dataset has 16 classes but model.num_classes is 10"),
    (dict(model__attention="cudnn", model__dtype="float32"), "attention=cudnn needs --model.dtype bfloat16"),
    (dict(batch_size=0), "batch_size must be positive"),
    (dict(batch_size=100, grad_accum=3), "batch_size 100 is not divisible by grad_accum 3"),
    (dict(total_epochs=3.0), "give exactly one training length"),
    (dict(total_steps=None), "give exactly one training length"),
    (dict(total_steps=-5), "total_steps must be positive"),
    (dict(schedule__warmup_epochs=1.0), "give at most one warmup length"),
    (dict(optim__lr=0.0), "optim.lr must be positive"),
    (dict(optim__b2=1.0), "optim.b1 and optim.b2 must lie in"),
    (dict(optim__wd_mults=(("[", 1.0),)), "invalid parameter regex '\\['"),
    (dict(data__source="folder"), "data.source=folder needs --data.root"),
    (dict(data__minival_fraction=1.5), "minival_fraction must lie in"),
    (dict(data__mixup_p=-0.1), "mixup_p must be >= 0"),
    (dict(mesh=dataclasses.replace(presets.get("demo").mesh, data=0)), "mesh.data must be -1"),
    (dict(log__every_steps=0), "log.every_steps must be >= 1"),
    # Literal fields typed from Python, not through the CLI (which checks choices itself).
    (dict(model__pool="avg"), "model.pool must be one of gap, tok, map, 0; got 'avg'"),
    (dict(optim__name="adamw"), "optim.name must be one of adam, sgd; got 'adamw'"),
    (dict(faults__nonfinite="ignore"), "faults.nonfinite must be one of stop, skip; got 'ignore'"),
    (dict(seed=-1), "seed must be >= 0"),
    (dict(model__depth=0), "model.depth must be positive, got 0"),
    (dict(model__num_classes=0), "model.num_classes must be at least 1"),
    (dict(model__rep_size=-2), "model.rep_size must be -1"),
    (dict(total_steps=0), "total_steps must be positive"),
    (dict(schedule__warmup_steps=-1), "schedule.warmup_steps must be >= 0"),
    (dict(schedule__decay="rsqrt", schedule__timescale=0), "schedule.timescale must be positive"),
    (dict(schedule__power=0.0), "schedule.power must be positive"),
    (dict(schedule__cooldown_steps=-1), "schedule.cooldown_steps >= 0"),
    (dict(optim__lr=float("inf")), "optim.lr must be a finite number, got inf"),
    (dict(optim__lr=float("nan")), "optim.lr must be a finite number, got nan"),
    (dict(optim__wd=float("nan")), "optim.wd must be a finite number, got nan"),
    (dict(total_steps=None, total_epochs=float("inf")), "total_epochs must be a finite number, got inf"),
    (dict(data__mixup_p=float("nan")), "data.mixup_p must be a finite number, got nan"),
    (dict(schedule__warmup_steps=None, schedule__warmup_epochs=float("nan")), "schedule.warmup_epochs must be a finite number"),
    (dict(model__image_size=0), "model.image_size must be positive, got 0"),
    (dict(workdir=""), "workdir is empty"),
    (dict(optim__eps=0.0), "optim.eps must be positive"),
    (dict(optim__name="sgd", optim__momentum=1.0), "optim.momentum must lie in \\[0, 1\\)"),
    (dict(optim__grad_clip_norm=-1.0), "optim.grad_clip_norm must be >= 0"),
    (dict(data__synthetic=dataclasses.replace(presets.get("demo").data.synthetic, num_shapes=9)),
     "data.synthetic.num_shapes must lie in 1..8, got 9"),
    (dict(data__synthetic=dataclasses.replace(presets.get("demo").data.synthetic, train_size=0)),
     "data.synthetic.train_size must be >= 1"),
    (dict(data__workers=-1), "data.workers and data.threads must be >= 0"),
    (dict(ckpt__keep=0), "ckpt.keep >= 1"),
    (dict(ckpt__every_minutes=-5.0), "ckpt.every_minutes must be >= 0"),
    (dict(ckpt__keep_every_steps=300), "ckpt.keep_every_steps=300 must be a multiple of ckpt.every_steps=200"),
    (dict(eval__every_steps=-1), "eval.every_steps and eval.batch_size must be >= 0"),
    (dict(faults__max_skipped_steps=0), "faults.max_skipped_steps must be >= 1"),
]


@pytest.mark.parametrize("changes,message", BAD_CONFIGS, ids=[m[:40] for _, m in BAD_CONFIGS])
def test_bad_config_gives_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as info:
        validate(demo_with(**changes))
    assert "\n" not in str(info.value)


def _float_fields(section, prefix=""):
    for field in dataclasses.fields(section):
        value = getattr(section, field.name)
        if dataclasses.is_dataclass(value):
            yield from _float_fields(value, f"{prefix}{field.name}.")
        elif isinstance(value, float):
            yield f"{prefix}{field.name}"


def _replace_path(cfg, path, value):
    head, _, rest = path.partition(".")
    if not rest:
        return dataclasses.replace(cfg, **{head: value})
    return dataclasses.replace(cfg, **{head: _replace_path(getattr(cfg, head), rest, value)})


@pytest.mark.parametrize("name", ["demo", "vit_s16_i1k"])
def test_no_float_field_of_any_section_accepts_nan_or_infinity(name):
    cfg = presets.get(name)
    cfg = _replace_path(cfg, "data.root", "/data")
    fields = list(_float_fields(cfg))
    assert {"optim.lr", "optim.grad_clip_norm", "schedule.power", "data.mixup_p", "ckpt.every_minutes"} <= set(fields)
    for path in fields:
        for bad in (float("nan"), float("inf")):
            with pytest.raises(ConfigError, match=f"^{path} must be a finite number"):
                validate(_replace_path(cfg, path, bad))
