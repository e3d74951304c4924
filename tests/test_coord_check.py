"""The muP coordinate check: the judging rules, and the real check on a small ViT, where muP must
pass over a x8 width range and SP must fail (mup's CoordCheckCase; ../shared/spec/mup.md section 6)."""

import dataclasses
import json
import os

import jax.numpy as jnp
import pytest

from frx import cli, coord_check, tasks
from frx.config import ConfigError
from tests.support.configs import tiny_config


def _result(modules, widths=(16, 32, 64, 128), param="mup"):
    return {"param": param, "widths": list(widths),
            "modules": {name: {str(w): list(v(w)) for w in widths} for name, v in modules.items()}}


def test_slopes_and_verdicts():
    result = _result({
        "flat": lambda w: [1.0, 1.1, 0.9],
        "grows": lambda w: [1.0, w / 16, w / 16],  # slope 1 after the first update: SP's signature
        "logits": lambda w: [0.0, 0.3, 0.3],  # zero head: exactly 0 at t = 1 at every width
        "blocks/0/attn/logits": lambda w: [w**-0.5, 2 * w**-0.5, 1.0],  # init part vanishing: allowed
        "vanishing": lambda w: [1.0, w**-0.5, 1.0],  # not a logit: shrinking is a bug
        "fast/logits": lambda w: [w**-1.0, 1.0, 1.0],  # faster than the init part can: a bug
        "partly_zero": lambda w: [0.0 if w == 16 else 1.0, 1.0, 1.0],
    })
    judged = coord_check.verdicts(result)
    assert judged["flat"]["slopes"][0] == pytest.approx(0.0)
    assert judged["grows"]["slopes"][1:] == pytest.approx([1.0, 1.0])
    assert judged["blocks/0/attn/logits"]["slopes"][0] == pytest.approx(-0.5)
    assert {n: v["pass"] for n, v in judged.items()} == {
        "flat": True, "grows": False, "logits": True, "blocks/0/attn/logits": True, "vanishing": False,
        "fast/logits": False, "partly_zero": False,
    }
    assert not coord_check.passed(result)
    table = coord_check.format_table(result)
    assert "grows" in table and "FAIL" in table and "mup: FAIL (3/7 modules" in table
    assert coord_check.DEFAULT_TOLERANCE == pytest.approx(0.1315, abs=1e-4)


def test_width_config_keeps_the_mlp_ratio_and_heads_or_head_dim():
    cfg = tiny_config()  # width 32, 2 heads, mlp 128
    wide = coord_check.width_config(cfg, 128).model.dims()
    assert (wide.width, wide.mlp_dim, wide.num_heads) == (128, 512, 2)
    heads = coord_check.width_config(cfg, 128, scale_heads=True).model.dims()
    assert (heads.num_heads, heads.head_dim) == (8, 16)


def test_width_config_unrolls_scanned_and_rematerialised_blocks_whose_outputs_the_check_captures():
    from frx import presets

    vit = dataclasses.replace(tiny_config().model, scan=True, remat=True, remat_policy="dots")
    model = coord_check.width_config(dataclasses.replace(tiny_config(), model=vit), 64).model
    assert (model.scan, model.remat, model.remat_policy, model.width) == (False, False, "full", 64)
    clip = presets.get("clip_demo")
    towers = dataclasses.replace(clip.model, scan=True, remat=True, text=dataclasses.replace(clip.model.text, scan=True))
    model = coord_check.width_config(dataclasses.replace(clip, model=towers), 192).model
    for tower in (model.image_tower(), model.text_tower()):
        assert (tower.scan, tower.remat) == (False, False)


@pytest.mark.slow
def test_coord_check_passes_for_mup_and_fails_for_sp_on_a_small_vit(tmp_path, capsys):
    args = ("demo --widths 16 128 --steps 3 --seeds 2 --lr 0.01 --batch 8 --model.image_size 16 --model.patch_size 4 "
            "--model.depth 1 --model.width 16 --model.num_heads 2 --model.num_classes 4 "
            "--data.synthetic.num_shapes 2 --data.synthetic.num_textures 1 --data.synthetic.train_size 64").split()
    assert cli.cmd_coord_check([*args, "--param", "mup", "--workdir", str(tmp_path / "mup")]) == 0
    out = capsys.readouterr().out
    assert "mup: PASS" in out
    with open(tmp_path / "mup" / coord_check.RESULT_FILE) as f:
        mup_result = json.load(f)
    assert set(mup_result) == {"param", "widths", "modules"} and mup_result["param"] == "mup"
    assert mup_result["widths"] == [16, 128]
    for name in ("embedding", "blocks/0/attn/logits", "blocks/0/attn", "blocks/0/mlp", "blocks/0/residual",
                 "pre_logits", "logits"):
        assert set(mup_result["modules"][name]) == {"16", "128"} and len(mup_result["modules"][name]["16"]) == 3
    # The zero readout: exactly 0 at t = 1 at every width, then O(1).
    assert [mup_result["modules"]["logits"][w][0] for w in ("16", "128")] == [0.0, 0.0]
    assert mup_result["modules"]["logits"]["128"][1] > 0
    assert os.path.getsize(tmp_path / "mup" / coord_check.PLOT_FILE) > 10_000

    cfg = cli.parse_train_args("demo", args[args.index("--model.image_size"):])
    check = coord_check.CoordCheck(cfg, widths=(16, 128), param="sp", steps=3, seeds=2, lr=0.01, batch_size=8)
    sp_result = coord_check.run(check, log=lambda message: None)
    judged = coord_check.verdicts(sp_result)
    assert not coord_check.passed(sp_result)
    # After the first update SP's logits grow ~linearly with width, and so do its attention logits
    # once the trunk has moved (t = 3: the zero head lets only the head move at the first update).
    assert judged["logits"]["slopes"][1] > 0.5 and not judged["logits"]["pass"]
    assert judged["blocks/0/attn/logits"]["slopes"][2] > 0.3


TWO_TOWER_ARGS = (
    "clip_demo --widths 16 128 --steps 3 --seeds 2 --lr 0.01 --batch 8 --model.image.image_size 16 "
    "--model.image.depth 1 --model.image.width 16 --model.image.num_heads 2 --model.text.depth 1 --model.text.width 16 "
    "--model.text.num_heads 2 --model.text.context_length 16 --data.pp_train decode|tokenize(16)|value_range(-1,1) "
    "--data.pp_eval decode|tokenize(16)|value_range(-1,1) --data.synthetic.train_size 64 --fewshot.source none"
).split()


@pytest.mark.slow
def test_coord_check_passes_for_mup_and_fails_for_sp_on_both_towers_of_a_two_tower_model(tmp_path):
    """Both towers' widths scale together (the text tower at the image tower's ratio); the projections
    are readouts, allowed to shrink like logits. muP: flat at every step; SP: the blocks grow."""
    results = {}
    for param in ("mup", "sp"):
        assert cli.cmd_coord_check([*TWO_TOWER_ARGS, "--param", param, "--workdir", str(tmp_path / param)]) == 0
        with open(tmp_path / param / coord_check.RESULT_FILE) as f:
            results[param] = json.load(f)
    names = list(results["mup"]["modules"])
    assert names == ["image/embedding", "image/blocks/0/attn/logits", "image/blocks/0/attn", "image/blocks/0/mlp",
                     "image/blocks/0/residual", "image/pre_logits", "image/projection", "text/blocks/0/attn/logits",
                     "text/blocks/0/attn", "text/blocks/0/mlp", "text/blocks/0/residual", "text/pooled",
                     "text/projection"]
    assert coord_check.passed(results["mup"]) and not coord_check.passed(results["sp"])
    sp = coord_check.verdicts(results["sp"])
    assert sp["text/blocks/0/residual"]["slopes"][2] > 0.3 and sp["image/blocks/0/residual"]["slopes"][2] > 0.3


def test_the_fixed_batch_is_checked_against_the_model_like_a_training_run():
    cfg = tiny_config()
    wrong = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, num_classes=cfg.model.num_classes - 1))
    with pytest.raises(ConfigError, match="model.num_classes"):
        coord_check.fixed_batch(wrong, tasks.make(wrong), batch_size=8)
    batch = coord_check.fixed_batch(cfg, tasks.make(cfg), batch_size=8)
    assert batch["image"].shape == (8, 16, 16, 3) and batch["image"].dtype == jnp.float32  # after value_range
    assert batch["label"].shape == (8,) and batch["label"].dtype == jnp.int32  # sparse class ids
