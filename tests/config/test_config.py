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
    (dict(model__remat_policy="dots"), "model.remat_policy=dots applies to rematerialised blocks only; add --model.remat True"),
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
    (dict(data__workers=-1), r"data.workers \(a number or auto\) and data.threads must be >= 0"),
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


def _clip(path: str, value):
    return _replace_path(presets.get("clip_demo"), path, value)


BAD_TWO_TOWER_CONFIGS = [
    (("model.image.num_classes", 10), "model.image.num_classes must be 0: the image tower's head is the projection"),
    (("model.image.head_zeroinit", True), "model.image.head_zeroinit would make every image embedding 0"),
    (("model.text.num_heads", 3), "text width 64 is not divisible by num_heads 3"),
    (("model.text.pool", "first"), "model.text.pool=first under a causal mask sees only the first token"),
    (("model.text.eos_id", 300), "model.text.eos_id 300 must lie in \\[0, model.text.vocab_size=259\\)"),
    (("model.logit_scale_init", 5.0), "model.logit_scale_init 5 lies outside the clamp \\[0, model.logit_scale_max=4.605"),
    (("model.embed_dim", 0), "model.embed_dim must be positive"),
    (("model.remat_policy", "dots"), "model.remat_policy=dots applies to rematerialised blocks only; add --model.remat"),
    (("model.text.remat_policy", "dots_no_batch"), "model.text.remat_policy=dots_no_batch applies to rematerialised"),
    (("contrastive.loss_impl", "chunked"), "contrastive.loss_impl=chunked is SigLIP's ring"),
    (("task", "classification"), "task classification trains a vit model, not two_tower"),
    (("data.source", "synthetic"), "task contrastive needs image-text pairs"),
    (("data.synthetic.holdout", -1), "data.synthetic.holdout must be >= 0"),
    (("fewshot.source", "folder"), "fewshot.source=folder needs --fewshot.root and --fewshot.test_root"),
    (("fewshot.shots", (0, 5)), "fewshot.shots must be positive counts"),
]


@pytest.mark.parametrize("change, message", BAD_TWO_TOWER_CONFIGS, ids=[m[:40] for _, m in BAD_TWO_TOWER_CONFIGS])
def test_bad_two_tower_and_contrastive_configs_give_one_line_errors(change, message):
    with pytest.raises(ConfigError, match=message) as info:
        validate(_clip(*change))
    assert "\n" not in str(info.value)


def test_a_classification_preset_refuses_caption_data():
    with pytest.raises(ConfigError, match="task classification needs labelled images"):
        validate(_replace_path(presets.get("demo"), "data.source", "synthetic_captions"))


def test_the_command_line_gives_flat_flags_for_each_tower():
    from frx.cli import parse_train_args

    cfg = parse_train_args("siglip_demo", ["--model.text.depth", "3", "--model.image.width", "128",
                                           "--model.logit_bias_init", "-5", "--contrastive.loss_impl", "gather"])
    assert (cfg.model.text.depth, cfg.model.image.width, cfg.model.logit_bias_init) == (3, 128, -5.0)
    assert cfg.contrastive.get_loss_impl() == "gather" and cfg.model.kind == "two_tower"
    assert parse_train_args("demo", ["--model.width", "64"]).model.width == 64  # a ViT's flags stay flat too


def test_scan_and_remat_are_not_part_of_the_checkpoint_fingerprint():
    from frx.config import model_fingerprint

    cfg = presets.get("clip_demo")
    remat = _replace_path(_replace_path(cfg, "model.remat", True), "model.image.remat", True)
    assert model_fingerprint(remat) == model_fingerprint(cfg)
    assert model_fingerprint(_replace_path(presets.get("demo"), "model.remat", True)) == model_fingerprint(presets.get("demo"))
    compute = {"model.scan": True, "model.remat_policy": "dots", "model.image.scan": True, "model.text.remat": True,
               "model.text.remat_policy": "dots", "model.image.remat_policy": "dots_no_batch"}
    for path, value in compute.items():
        assert model_fingerprint(_replace_path(cfg, path, value)) == model_fingerprint(cfg), path
    demo = presets.get("demo")
    for path, value in {"model.scan": True, "model.remat_policy": "dots_no_batch"}.items():
        assert model_fingerprint(_replace_path(demo, path, value)) == model_fingerprint(demo), path
    assert model_fingerprint(_replace_path(demo, "model.depth", 3)) != model_fingerprint(demo)  # the check can fail


def test_the_two_towers_scan_and_remat_shortcuts_reach_the_towers_that_do_not_set_their_own():
    cfg = presets.get("clip_demo").model
    both = dataclasses.replace(cfg, scan=True, remat=True, remat_policy="dots")
    for tower in (both.image_tower(), both.text_tower()):
        assert (tower.scan, tower.remat, tower.remat_policy) == (True, True, "dots")
    image_only = dataclasses.replace(cfg, remat_policy="dots_no_batch", image=dataclasses.replace(cfg.image, remat=True))
    image_only.validate()
    assert (image_only.image_tower().remat, image_only.image_tower().remat_policy) == (True, "dots_no_batch")
    assert (image_only.text_tower().remat, image_only.text_tower().remat_policy) == (False, "full")
    own = dataclasses.replace(both, remat_policy="full", text=dataclasses.replace(cfg.text, remat_policy="dots_no_batch"))
    assert (own.image_tower().remat_policy, own.text_tower().remat_policy) == ("full", "dots_no_batch")
    with pytest.raises(ConfigError, match="^model.remat_policy=dots and model.text.remat_policy=dots_no_batch "
                                          "disagree; set one of them$"):
        dataclasses.replace(own, remat_policy="dots").validate()
