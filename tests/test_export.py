"""frx -> timm: the state dict loads into timm's VisionTransformer with strict=True and gives frx's
logits (float32, max abs diff <= 1e-4); big_vision -> frx -> timm gives big_vision's logits."""

import json

import numpy as np
import pytest
from safetensors import safe_open

from frx import convert, export, param_paths, state, weights
from frx.cli import cmd_export
from frx.config import ConfigError, MupConfig, TrainConfig, ViTConfig
from tests.support import big_vision_reference as bv
from tests.support.timm_support import import_timm_vit
from tests.support.trained_run import trained_run

TOLERANCE = 1e-4


def model_config(**kw) -> ViTConfig:
    kw = {"variant": "mu/4", "width": 32, "depth": 2, "num_heads": 2, "image_size": 16, "num_classes": 5,
          "head_zeroinit": False, **kw}
    return ViTConfig(**kw)


def random_params(model: ViTConfig, mup=None, seed=0) -> dict[str, np.ndarray]:
    """Initial parameters with every bias, norm and token perturbed, so that each array shows in the logits."""
    import jax

    tree = state.init_params(model, seed, mup)
    rng = np.random.default_rng(seed)
    out = {}
    for keypath, leaf in jax.tree_util.tree_leaves_with_path(tree):
        value = np.asarray(leaf)
        path = param_paths.path_str(keypath)
        if path.endswith(("bias", "scale", "cls", "probe")):
            value = value + rng.normal(0, 0.1, value.shape).astype(np.float32)
        out[path] = value
    return out


def timm_model(torch, vit, model: ViTConfig, state_dict: dict):
    """Built the way `export.timm_code` says, loaded with strict=True."""
    net = vit.VisionTransformer(**export.timm_kwargs(model))
    if model.pre_logits_size:
        d, r = model.dims().width, model.pre_logits_size
        net.head = torch.nn.Sequential(torch.nn.Linear(d, r), torch.nn.Tanh(), torch.nn.Linear(r, model.num_classes))
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state_dict.items()}, strict=True)
    return net.eval()


def run_timm(torch, net, images_BHWC) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(np.ascontiguousarray(images_BHWC.transpose(0, 3, 1, 2)))).numpy()


def images(n=6, seed=1):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 16, 16, 3)).astype(np.float32)


CASES = {
    "gap-sincos2d": (dict(pool="gap", posemb="sincos2d"), None),
    "tok-learn-prelogits": (dict(pool="tok", posemb="learn", rep_size=24), None),
    "map-learn": (dict(pool="map", posemb="learn"), None),
    "gap-mup": (dict(pool="gap", posemb="sincos2d", width=64, num_heads=4),
                MupConfig(param="mup", base_width=32, input_alpha=2.0, output_alpha=3.0, attn_alpha=0.5)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_timm_export_loads_strictly_and_gives_frx_logits(case):
    torch, vit = import_timm_vit()
    kw, mup = CASES[case]
    model = model_config(**kw)
    params = random_params(model, mup)
    net = timm_model(torch, vit, model, export.timm_state_dict(params, model, mup))
    x = images()
    want = export.frx_logits(TrainConfig(model=model, mup=mup or MupConfig()), params, x)
    got = run_timm(torch, net, x)
    assert np.abs(want).max() > 0.1
    assert np.abs(got - want).max() <= TOLERANCE


def test_big_vision_to_frx_to_timm_gives_big_vision_logits(tmp_path):
    torch, vit = import_timm_vit()
    reference = bv.ViT(num_classes=5, patch=4, width=32, depth=2, mlp_dim=128, num_heads=2, pool="map", posemb="learn")
    params = bv.init(reference, 16)
    bv.save_npz(tmp_path / "bv.npz", params)
    model = model_config(pool="map", posemb="learn")
    frx_params = convert.big_vision_params(str(tmp_path / "bv.npz"), model)
    net = timm_model(torch, vit, model, export.timm_state_dict(frx_params, model))
    x = images()
    assert np.abs(run_timm(torch, net, x) - bv.logits(reference, params, x)).max() <= TOLERANCE


def test_what_timm_cannot_express_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="model.pool=0 reads token 0 without a class token"):
        export.timm_kwargs(model_config(pool="0"))
    # timm sizes its MLP as int(width * mlp_ratio); 14 * (61 / 14) is 60.99999999999999 in floating point.
    with pytest.raises(ConfigError, match="timm cannot build an MLP of 61 units at width 14"):
        export.timm_kwargs(ViTConfig(variant="mu/4", width=14, mlp_dim=61, num_heads=2, image_size=16))


def test_export_command_prints_working_timm_code_and_checks_the_logits(tmp_path_factory, tmp_path, capsys):
    torch, _ = import_timm_vit()  # timm importable in this process (the check imports it)
    run, _ = trained_run(tmp_path_factory)
    capsys.readouterr()  # what training printed, if it trained here
    out = str(tmp_path / "timm.safetensors")
    assert cmd_export([str(run), "--to", "timm", out, "--check"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"{out}: step 6, 31 tensors, 27,684 parameters"  # frx's 27,172 + the 16x32 sincos table
    assert float(printed[-1].split(": ")[1]) <= TOLERANCE
    code = "\n".join(printed[1:-1])
    namespace = {}
    exec(code, namespace)  # the printed code builds the model and loads the file with strict=True
    cfg, _, params = weights.read_run_params(str(run))
    x = images()
    assert np.abs(run_timm(torch, namespace["model"].eval(), x) - export.frx_logits(cfg, params, x)).max() <= TOLERANCE
    with safe_open(out, "np") as f:
        assert json.loads(f.metadata()["timm_kwargs"]) == export.timm_kwargs(cfg.model)
