"""`--init.from`: a new run takes the weights of a run folder, a frx safetensors export or a big_vision
.npz, and nothing else (optimizer state, step, RNG, counters and data position are a fresh run's);
frx -> safetensors -> frx is bit-identical."""

import dataclasses
import json

import numpy as np
import pytest

from frx import convert, export, init_from, tracking, weights
from frx import train as train_lib
from frx.cli import parse_train_args
from frx.config import ConfigError, InitConfig, MupConfig, validate
from frx.param_paths import path_str
from tests.support.configs import TINY_CLI, tiny_config
from tests.support.run_folders import assert_same_bits
from tests.support.trained_run import trained_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory)[0]


def flat(tree) -> dict:
    import jax

    return {path_str(kp): np.asarray(v) for kp, v in jax.tree_util.tree_leaves_with_path(tree)}


def test_safetensors_export_round_trips_bit_for_bit(run, tmp_path, monkeypatch):
    _, step, params = weights.read_run_params(str(run))
    monkeypatch.chdir(run.parent)  # a relative run folder, as on the command line
    written = export.export_run(run.name, "safetensors", str(tmp_path / "w.safetensors"))
    cfg, step_back, params_back = weights.read_safetensors(str(tmp_path / "w.safetensors"))
    assert step == step_back == written["step"] == 6
    assert_same_bits(params, params_back, "safetensors round trip")
    assert json.loads((run / "config.json").read_text()) == json.loads(json.dumps(dataclasses.asdict(cfg)))


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    """The tiny run's state spec: built (and its init compiled) once for every source below."""
    return train_lib.setup(tiny_config(tmp_path_factory.mktemp("new") / "run", seed=3)).spec


@pytest.mark.parametrize("kind", ["run", "safetensors", "big_vision"])
def test_init_from_takes_the_weights_and_nothing_else(run, spec, tmp_path, kind):
    _, _, source_params = weights.read_run_params(str(run))
    source = {"run": str(run), "safetensors": str(tmp_path / "w.safetensors"), "big_vision": str(tmp_path / "bv.npz")}[kind]
    if kind == "safetensors":
        export.export_run(str(run), "safetensors", source)
    if kind == "big_vision":  # the run's parameters under big_vision's names, as big_vision saves them
        export.export_run(str(run), "big_vision", source)
        with np.load(source) as npz:
            assert npz["params/Transformer/encoderblock_1/MlpBlock_0/Dense_0/kernel"].tobytes() == \
                source_params["blocks/1/mlp/fc1/kernel"].tobytes()
    cfg = tiny_config(seed=3, init=InitConfig(from_=source))
    said = []
    state = init_from.init_state(cfg, spec, say=said.append)
    fresh = spec.init_state()
    assert_same_bits(flat(state["params"]), source_params, "parameters")
    assert not np.array_equal(flat(fresh["params"])["blocks/0/mlp/fc1/kernel"], source_params["blocks/0/mlp/fc1/kernel"])
    rest = lambda s: flat({k: v for k, v in s.items() if k != "params"})  # noqa: E731
    assert_same_bits(rest(state), rest(fresh), "optimizer state, step, rng, fault counters")
    note = "" if kind == "big_vision" else f"; parameters of step 6 of {source}"
    assert said == [f"init.from {source}: {len(source_params)} parameters loaded, 0 fresh{note}"]


def test_fine_tuning_on_arrays_with_a_fresh_head_from_the_command_line(run, tmp_path, capsys):
    """Another class count: the head is refused in one line unless --init.reset keeps it fresh."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", image=rng.integers(0, 256, (16, 16, 16, 3), dtype=np.uint8), label=np.arange(16) % 3)
    args = TINY_CLI + ["--model.num_classes", "3", "--data.source", "arrays", "--data.root", str(tmp_path / "d.npz"),
                       "--total_steps", "3", "--model.dtype", "float32", "--init.from", str(run),
                       "--workdir", str(tmp_path / "tuned")]
    refused = parse_train_args("demo", args)
    with pytest.raises(ConfigError) as error:
        init_from.load_params(refused, convert.param_shapes(refused.model))
    assert "parameter 'head/bias' has shape (4,) but the model config needs (3,)" in str(error.value)
    assert "\n" not in str(error.value)
    cfg = parse_train_args("demo", args + ["--init.reset", "head/.*"])
    assert cfg.init == InitConfig(from_=str(run), reset=("head/.*",))
    capsys.readouterr()
    train_lib.train(cfg)
    said = capsys.readouterr().out.splitlines()
    assert f"init.from {run}: 36 parameters loaded, 2 fresh; parameters of step 6 of {run}" in said
    records = tracking.read_metrics(str(tmp_path / "tuned"))
    assert [r["step"] for r in records if "train/loss" in r] == [1, 2, 3]
    assert weights.checkpoint_steps(str(tmp_path / "tuned")) == [3]
    tuned = weights.read_run_params(str(tmp_path / "tuned"))[2]
    _, _, source_params = weights.read_run_params(str(run))
    assert tuned["head/kernel"].shape == (32, 3)
    assert not np.array_equal(tuned["blocks/0/mlp/fc1/kernel"], source_params["blocks/0/mlp/fc1/kernel"])  # it trained


def test_bad_init_sources_are_refused_in_one_line(run, tmp_path):
    wanted = {"head/kernel": (32, 4), "head/bias": (4,)}
    cases = [
        (tiny_config(init=InitConfig(from_=str(tmp_path / "none.npz"))), "not found; pass the path of a .npz file"),
        (tiny_config(init=InitConfig(from_=str(tmp_path / "nothing"))), "does not exist; give a big_vision .npz"),
        (tiny_config(init=InitConfig(from_=str(run), reset=("heads/.*",))), "init.reset pattern 'heads/.*' matches no parameter"),
        (tiny_config(init=InitConfig(from_=str(run)), mup=MupConfig(param="mup", base_width=16)),
         "was trained with mup"),
        (tiny_config(init=InitConfig(from_=str(tmp_path / "x.npz")), mup=MupConfig(param="mup", base_width=16)),
         "big_vision checkpoints are in the standard parametrization"),
    ]
    for cfg, message in cases:
        with pytest.raises(ConfigError) as error:
            init_from.load_params(cfg, wanted)
        assert message in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="init.reset keeps some parameters fresh when others come from --init.from"):
        validate(tiny_config(init=InitConfig(reset=("head/.*",))))
    with pytest.raises(ConfigError, match=r"invalid parameter regex '\(' in init.reset"):
        validate(tiny_config(init=InitConfig(from_="x.npz", reset=("(",))))
    export_path = tmp_path / "t.safetensors"
    from safetensors.numpy import save_file

    save_file({"head.weight": np.zeros((4, 32), np.float32)}, str(export_path), metadata={"format": "pt"})
    with pytest.raises(ConfigError, match="is not a frx safetensors file"):
        init_from.load_params(tiny_config(init=InitConfig(from_=str(export_path))), wanted)


@pytest.fixture(scope="module")
def two_tower_run(tmp_path_factory):
    from tests.support.configs import tiny_contrastive_config

    folder = tmp_path_factory.mktemp("two_tower") / "run"
    cfg = tiny_contrastive_config(folder, loss="siglip", total_steps=3)
    train_lib.train(dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, every_steps=0, splits=())))
    return folder


def test_a_classifier_starts_from_a_two_tower_runs_image_tower(two_tower_run, tmp_path):
    """The vision tower of a SigLIP run is a classifier's trunk: it loads under the classifier's paths
    (its head, the image projection, kept fresh for the new classes), and exports to big_vision as a ViT."""
    source_cfg, _, source = weights.read_run_params(str(two_tower_run))
    classifier = tiny_config(model=dataclasses.replace(source_cfg.model.image, num_classes=4),
                             init=InitConfig(from_=str(two_tower_run), reset=("head/.*",)))
    notes = []
    loaded = init_from.load_params(classifier, convert.param_shapes(classifier.model), notes)
    tower = {path.removeprefix("image/"): value for path, value in source.items() if path.startswith("image/")}
    assert set(loaded) == set(tower) - {"head/kernel", "head/bias"} and len(loaded) > 10
    assert_same_bits(loaded, {path: tower[path] for path in loaded}, "image tower")
    assert notes[-1] == "its image tower"
    # The same tower, head included (the projection to embed_dim), exported for big_vision / timm.
    export.export_run(str(two_tower_run), "big_vision", str(tmp_path / "tower.npz"))
    with np.load(tmp_path / "tower.npz") as npz:
        assert npz["params/head/kernel"].shape == (16, 8) and not any("text" in name for name in npz.files)


def test_a_two_tower_model_takes_a_vit_run_as_its_image_tower_only_with_the_rest_kept_fresh(two_tower_run, tmp_path):
    source_cfg, _, source = weights.read_run_params(str(two_tower_run))
    vit_run = tmp_path / "vit"
    image = dataclasses.replace(source_cfg.model.image, num_classes=4)
    train_lib.train(tiny_config(vit_run, model=image, total_steps=3, eval=dataclasses.replace(
        tiny_config().eval, every_steps=0, splits=())))
    wanted = convert.param_shapes(source_cfg.model)
    refused = dataclasses.replace(source_cfg, init=InitConfig(from_=str(vit_run)))
    with pytest.raises(ConfigError, match=r"fills only the image tower; keep the rest fresh with --init.reset 'text/\.\*'"):
        init_from.load_params(refused, wanted)
    cfg = dataclasses.replace(source_cfg, init=InitConfig(from_=str(vit_run), reset=("text/.*", "logit_.*", "image/head/.*")))
    loaded = init_from.load_params(cfg, wanted)
    vit_params = {path: value for path, value in weights.read_run_params(str(vit_run))[2].items()
                  if not path.startswith("head/")}  # 4 classes: the projection to embed_dim 8 stays fresh
    assert set(loaded) == {"image/" + path for path in vit_params}
    assert_same_bits(loaded, {"image/" + path: value for path, value in vit_params.items()}, "image tower")
