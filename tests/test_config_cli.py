"""Configs, presets and the command line: overrides, presets, round trips, one-line errors."""

import dataclasses
import subprocess
import sys

import pytest

from frx import cli, presets
from frx.config import ConfigError, TrainConfig, from_dict, to_dict, validate
from frx.train import get_durations, setup


def test_every_preset_is_frozen_and_valid():
    for name in presets.names():
        cfg = presets.get(name)
        with pytest.raises(dataclasses.FrozenInstanceError):
            cfg.seed = 1  # type: ignore[misc]
        if cfg.data.source == "folder":
            cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root="/data/imagenet/train"))
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


def test_dotted_overrides_and_total_steps_replaces_epochs():
    cfg = cli.parse_train_args("vit_s16_i1k", ["--optim.lr", "3e-3", "--total_steps", "100", "--seed", "7",
                                               "--batch_size", "256", "--schedule.warmup_steps", "10",
                                               "--data.root", "/x", "--model.variant", "B/32"])
    assert cfg.optim.lr == 3e-3 and cfg.seed == 7 and cfg.batch_size == 256
    assert cfg.total_steps == 100 and cfg.total_epochs is None
    assert cfg.model.dims().patch_size == 32


def test_warmup_in_epochs_replaces_preset_warmup_steps():
    cfg = cli.parse_train_args("demo", ["--schedule.warmup_epochs", "0.5"])
    assert cfg.schedule.warmup_epochs == 0.5 and cfg.schedule.warmup_steps is None


def test_config_round_trips_through_json():
    for name in presets.names():
        cfg = presets.get(name)
        assert from_dict(TrainConfig, to_dict(cfg)) == cfg


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(ConfigError, match="unknown preset 'vit_z'.*demo"):
        presets.get("vit_z")


def _demo(**changes):
    cfg = presets.get("demo")
    for path, value in changes.items():
        section, _, field = path.partition("__")
        if field:
            cfg = dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **{field: value})})
        else:
            cfg = dataclasses.replace(cfg, **{section: value})
    return cfg


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
    (dict(log__every_steps=0), "log.every_steps >= 1"),
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
    (dict(optim__lr=float("inf")), "optim.lr must be positive and finite, got inf"),
    (dict(optim__lr=float("nan")), "optim.lr must be positive and finite, got nan"),
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
        validate(_demo(**changes))
    assert "\n" not in str(info.value)


# Checks that need devices (8 fake CPU devices here), resolved lengths, parameter paths or the disk:
# `frx.train.setup` runs them before anything is compiled.
SETUP_ERRORS = [
    (dict(schedule__warmup_steps=1000), "warmup \\(1000 steps\\) must be shorter than training \\(800 steps\\)"),
    (dict(schedule__cooldown_steps=900), "schedule.cooldown_steps=900 is longer than training \\(800 steps\\)"),
    (dict(batch_size=100), "batch_size 100 / grad_accum 1 = 100 is not divisible by 8 data-parallel devices"),
    (dict(eval__batch_size=12), "eval.batch_size 12 is not divisible by 8 data-parallel devices"),
    (dict(mesh=dataclasses.replace(presets.get("demo").mesh, data=16)), "needs 16 devices but only 8 devices are visible"),
    (dict(optim__lr_mults=(("blocks/.*/atn/.*", 2.0),)), "optim.lr_mults pattern 'blocks/.\\*/atn/.\\*' matches no parameter"),
    (dict(optim__wd_mults=(("kernel", 1.0),)), "optim.wd_mults pattern 'kernel' matches no parameter.*whole path"),
    (dict(optim__frozen=(".*",)), "optim.frozen freezes every parameter"),
    (dict(data__pp_train="decode|rotate(3)|value_range(-1,1)"), "unknown preprocessing op 'rotate'"),
    (dict(data__pp_train="decode|resize(16"), "cannot parse preprocessing op"),
    (dict(data__pp_train="decode|resize(16)|value_range(-1,1)"), "produces 16x16x3 images but the model expects 32x32x3"),
    (dict(data__source="folder", data__root="/nonexistent/images"), "image folder '/nonexistent/images' does not exist"),
]


@pytest.mark.parametrize("changes,message", SETUP_ERRORS, ids=[m[:40] for _, m in SETUP_ERRORS])
def test_bad_run_setup_gives_one_line_error_before_compiling(changes, message):
    with pytest.raises(ConfigError, match=message) as info:
        setup(_demo(**changes))
    assert "\n" not in str(info.value)


def test_a_workdir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "run").write_text("not a folder")
    with pytest.raises(ConfigError, match="workdir .*run' exists and is not a folder"):
        setup(_demo(workdir=str(tmp_path / "run")))


HELP = ".*; see frx train demo --help$"
CLI_ERRORS = [
    (["--model.widht", "3"], "^Unrecognized options: --model.widht, 3 \\(perhaps you meant --model.width\\)" + HELP),
    (["--batch_size", "abc"], "^Error parsing --batch_size: invalid literal for int\\(\\) with base 10: 'abc'" + HELP),
    (["--total_steps", "1.5"], "^Error parsing --total_steps" + HELP),
    (["--model.pool", "avg"], "^invalid choice 'avg' for argument '--model.pool'" + HELP),
    (["--faults.nonfinite", "maybe"], "^invalid choice 'maybe' for argument '--faults.nonfinite'" + HELP),
    (["--ckpt.save_on_signal", "perhaps"], "--ckpt.save_on_signal" + HELP),
    (["--seed"], "^Missing value for argument '--seed'" + HELP),
    (["--optim.wd_mults", "x"], "^Error parsing --optim.wd_mults" + HELP),
    (["--model.num_heads", "5"], "^model width 96 is not divisible by num_heads 5"),
    (["--ckpt.every_minutes", "-1"], "^ckpt.every_minutes must be >= 0"),
]


@pytest.mark.parametrize("args,message", CLI_ERRORS, ids=[" ".join(a) for a, _ in CLI_ERRORS])
def test_bad_command_line_gives_one_line_error(args, message):
    with pytest.raises(ConfigError, match=message) as info:
        cli.parse_train_args("demo", args)
    assert "\n" not in str(info.value)


def test_cli_reports_config_errors_in_one_line_and_exits_2():
    proc = subprocess.run([sys.executable, "-m", "frx", "train", "demo", "--model.num_heads", "5"],
                          capture_output=True, text=True, env={"FRX_LAUNCHED": "1", "PATH": ""}, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("frx: error: model width 96 is not divisible")


def test_presets_command_lists_every_preset(capsys):
    assert cli.cmd_presets([]) == 0
    out = capsys.readouterr().out
    for name in presets.names():
        assert name in out


def test_batch_not_divisible_by_devices_is_refused_before_compiling():
    from frx import sharding
    from frx.config import MeshConfig

    mesh = sharding.make_mesh(MeshConfig(data=8))
    with pytest.raises(ConfigError, match="12 is not divisible by 8 data-parallel devices"):
        sharding.check_batch(_demo(batch_size=12), mesh)
    with pytest.raises(ConfigError, match="= 20 is not divisible by 8 data-parallel devices"):
        sharding.check_batch(_demo(batch_size=40, grad_accum=2), mesh)
    with pytest.raises(ConfigError, match="only 8 devices are visible"):
        sharding.make_mesh(MeshConfig(data=16))
