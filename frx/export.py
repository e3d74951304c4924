"""`frx export RUN --to timm|safetensors OUT`: a run's newest checkpoint leaves frx.

timm: a state dict (safetensors, PyTorch layouts) that `timm.models.vision_transformer.VisionTransformer`
built with `timm_kwargs(model)` loads with `strict=True` and that computes frx's logits (float32):
- pool gap -> class_token=False, global_pool="avg", fc_norm=False (frx normalises every token, then
  averages; timm's default for "avg" would average, then normalise); tok -> class_token=True,
  global_pool="token", no_embed_class=True (frx adds the position embedding before prepending the
  token); map -> global_pool="map" (timm's AttentionPoolLatent is big_vision's MAPHead); pool "0"
  (token 0 without a class token) has no timm equivalent and is refused;
- act_layer="gelu_tanh": frx's MLPs use the tanh approximation of GELU, as big_vision (flax's default);
- position embedding: a learned table is copied; frx's fixed sincos2d table is written as timm's
  `pos_embed` parameter (timm would train it if fine-tuned further);
- pre-logits (model.rep_size): timm's VisionTransformer has no such layer, so the head becomes
  `nn.Sequential(Linear(width, rep), Tanh(), Linear(rep, classes))`, which `timm_code` spells out;
- muP's forward multipliers (input/readout multipliers, the attention scale) are folded into the
  weights, so the exported model is a plain standard-parametrization ViT.

safetensors: frx's own parameters with the config and step as metadata (frx.weights); `--init.from`
reads them back bit for bit.

big_vision: an .npz under big_vision's names (frx.convert.NAME_PAIRS), "params/" first as big_vision's
own checkpoints have it; big_vision/models/vit.py `load` and `frx.convert.from_big_vision` read it.
"""

from __future__ import annotations

import json
import math

import numpy as np

from frx import weights
from frx.config import ConfigError, MupConfig, TrainConfig, ViTConfig
from frx.models.layers import posemb_sincos_2d

TIMM_CLASS = "timm.models.vision_transformer.VisionTransformer"


def timm_kwargs(model: ViTConfig) -> dict:
    """The constructor arguments of timm's VisionTransformer that match the frx model config."""
    dims = model.dims()
    if model.pool == "0":
        raise ConfigError("model.pool=0 reads token 0 without a class token, which timm's VisionTransformer cannot "
                          "express (its token pooling needs class_token=True); export with --to safetensors")
    mlp_ratio = dims.mlp_dim / dims.width
    if int(dims.width * mlp_ratio) != dims.mlp_dim:  # timm sizes its MLPs as int(width * mlp_ratio)
        raise ConfigError(f"timm cannot build an MLP of {dims.mlp_dim} units at width {dims.width}; "
                          "export with --to safetensors")
    kwargs = dict(img_size=model.image_size, patch_size=dims.patch_size, num_classes=model.num_classes,
                  embed_dim=dims.width, depth=dims.depth, num_heads=dims.num_heads, mlp_ratio=mlp_ratio,
                  qkv_bias=True, act_layer="gelu_tanh", pos_embed="learn")
    pooling = {
        "gap": dict(class_token=False, global_pool="avg", fc_norm=False),
        "tok": dict(class_token=True, global_pool="token", no_embed_class=True),
        "map": dict(class_token=False, global_pool="map"),
    }
    return {**kwargs, **pooling[model.pool]}


def timm_code(model: ViTConfig, path: str = "PATH") -> str:
    """Python that builds the timm model and loads `timm_state_dict`'s output from `path`."""
    kwargs = ", ".join(f"{k}={v!r}" for k, v in timm_kwargs(model).items())
    lines = ["import safetensors.torch, torch",
             "from timm.models.vision_transformer import VisionTransformer",
             f"model = VisionTransformer({kwargs})"]
    if model.pre_logits_size:
        width, rep = model.dims().width, model.pre_logits_size
        lines.append(f"model.head = torch.nn.Sequential(torch.nn.Linear({width}, {rep}), torch.nn.Tanh(), "
                     f"torch.nn.Linear({rep}, {model.num_classes}))  # frx's tanh pre-logits + head")
    lines.append(f"model.load_state_dict(safetensors.torch.load_file({path!r}), strict=True)")
    return "\n".join(lines)


def _multipliers(model: ViTConfig, mup: MupConfig | None) -> tuple[dict[str, float], dict[str, float]]:
    """({dense path: input multiplier != 1}, {attention path: logit scale / SP's scale != 1})."""
    from flax import nnx

    from frx import mup as mup_lib
    from frx import param_paths
    from frx.models import layers

    if mup is None or mup.param == "sp":
        return {}, {}
    module = nnx.eval_shape(lambda: mup_lib.make_model(model, mup, 0))
    dense, attention = {}, {}
    for keypath, node in nnx.iter_graph(module):
        path = param_paths.path_str(keypath)
        if isinstance(node, layers.Dense) and node.input_multiplier != 1.0:
            dense[path] = float(node.input_multiplier)
        if isinstance(node, layers.Attention):
            ratio = node.scale / node.q.out_shape[-1] ** -0.5
            if ratio != 1.0:
                attention[path] = ratio
    return dense, attention


def standard_params(params: dict[str, np.ndarray], model: ViTConfig, mup: MupConfig | None) -> dict[str, np.ndarray]:
    """The parameters of the standard-parametrization ViT that computes what `params` compute under `mup`."""
    dense, attention = _multipliers(model, mup)
    out = dict(params)
    for path, factor in dense.items():  # (x * m) @ W = x @ (m W)
        out[f"{path}/kernel"] = out[f"{path}/kernel"] * np.float32(factor)
    for path, ratio in attention.items():  # the extra logit scale moves into the queries
        for leaf in ("kernel", "bias"):
            out[f"{path}/q/{leaf}"] = out[f"{path}/q/{leaf}"] * np.float32(ratio)
    return out


def _linear(params: dict, frx: str, timm: str) -> dict:
    """A frx Dense (kernel in_shape + out_shape) as a torch Linear (weight (out, in))."""
    kernel = params[f"{frx}/kernel"]
    bias = params[f"{frx}/bias"]
    return {f"{timm}.weight": kernel.reshape(-1, bias.size).T, f"{timm}.bias": bias.reshape(-1)}


def _qkv_weight(params: dict, frx: str, names: str) -> tuple[np.ndarray, np.ndarray]:
    """q/k/v kernels (D, H, Dh) stacked the way timm splits its fused projection: (3 or 2, H, Dh)."""
    weight = np.concatenate([params[f"{frx}/{n}/kernel"].reshape(params[f"{frx}/{n}/kernel"].shape[0], -1).T
                             for n in names])
    bias = np.concatenate([params[f"{frx}/{n}/bias"].reshape(-1) for n in names])
    return weight, bias


def _norm(params: dict, frx: str, timm: str) -> dict:
    return {f"{timm}.weight": params[f"{frx}/scale"], f"{timm}.bias": params[f"{frx}/bias"]}


def _mlp(params: dict, frx: str, timm: str) -> dict:
    return {**_linear(params, f"{frx}/fc1", f"{timm}.fc1"), **_linear(params, f"{frx}/fc2", f"{timm}.fc2")}


def timm_state_dict(params: dict[str, np.ndarray], model: ViTConfig, mup: MupConfig | None = None) -> dict:
    """{timm name: float32 array} for `timm_kwargs(model)` (see `timm_code` for a pre-logits head)."""
    timm_kwargs(model)  # refuses what timm cannot express
    p = standard_params(params, model, mup)
    dims = model.dims()
    grid = model.image_size // dims.patch_size
    sd = {
        "patch_embed.proj.weight": p["embedding/kernel"].transpose(3, 2, 0, 1),  # (p, p, 3, D) -> (D, 3, p, p)
        "patch_embed.proj.bias": p["embedding/bias"],
        "pos_embed": p["pos_embedding"] if model.posemb == "learn" else posemb_sincos_2d(grid, grid, dims.width),
        **_norm(p, "encoder_norm", "norm"),
    }
    if model.pool == "tok":
        sd["cls_token"] = p["cls"]
    for i in range(dims.depth):
        frx, timm = f"blocks/{i}", f"blocks.{i}"
        qkv_w, qkv_b = _qkv_weight(p, f"{frx}/attn", ("q", "k", "v"))
        sd.update({f"{timm}.attn.qkv.weight": qkv_w, f"{timm}.attn.qkv.bias": qkv_b,
                   **_linear(p, f"{frx}/attn/out", f"{timm}.attn.proj"),
                   **_norm(p, f"{frx}/norm1", f"{timm}.norm1"), **_norm(p, f"{frx}/norm2", f"{timm}.norm2"),
                   **_mlp(p, f"{frx}/mlp", f"{timm}.mlp")})
    if model.pool == "map":
        kv_w, kv_b = _qkv_weight(p, "map/attn", ("k", "v"))
        sd.update({"attn_pool.latent": p["map/probe"], **_linear(p, "map/attn/q", "attn_pool.q"),
                   "attn_pool.kv.weight": kv_w, "attn_pool.kv.bias": kv_b,
                   **_linear(p, "map/attn/out", "attn_pool.proj"), **_norm(p, "map/norm", "attn_pool.norm"),
                   **_mlp(p, "map/mlp", "attn_pool.mlp")})
    if model.pre_logits_size:
        sd.update({**_linear(p, "pre_logits", "head.0"), **_linear(p, "head", "head.2")})
    else:
        sd.update(_linear(p, "head", "head"))
    return {k: np.ascontiguousarray(v, np.float32) for k, v in sd.items()}


def export_run(workdir: str, to: str, out: str) -> dict:
    """Writes the newest checkpoint of a run folder to `out`; returns what was written (for the CLI).
    A two-tower run goes to timm and big_vision as its image tower (its head: the image projection)."""
    cfg, step, params = weights.read_run_params(workdir)
    if to == "safetensors":
        weights.write_safetensors(out, params, cfg, step)
        return {"step": step, "tensors": len(params), "params": int(sum(v.size for v in params.values()))}
    cfg, params = weights.as_vit(cfg, params)
    if to == "big_vision":
        if not out.endswith(".npz"):
            raise ConfigError(f"a big_vision checkpoint is an .npz file; name it {out}.npz")
        from frx import convert

        standard = standard_params(params, cfg.model, cfg.mup)  # big_vision has no muP multipliers
        np.savez(out, **{"params/" + convert.big_vision_name(p): v for p, v in standard.items()})
        return {"step": step, "tensors": len(params), "params": int(sum(v.size for v in params.values()))}
    if to != "timm":
        raise ConfigError(f"unknown export target {to!r}; use timm, safetensors or big_vision")
    from safetensors.numpy import save_file

    state_dict = timm_state_dict(params, cfg.model, cfg.mup)
    metadata = {"format": "pt", "timm_class": TIMM_CLASS, "timm_kwargs": json.dumps(timm_kwargs(cfg.model)),
                "frx_step": str(step), "frx_pre_logits": str(cfg.model.pre_logits_size)}
    save_file(state_dict, out, metadata=metadata)
    return {"step": step, "tensors": len(state_dict), "params": int(sum(v.size for v in state_dict.values())),
            "code": timm_code(cfg.model, out), "kwargs": timm_kwargs(cfg.model)}


# --------------------------------------------------------------------------------------------------
# Checking an export against frx (needs torch and timm)


def frx_logits(cfg: TrainConfig, params: dict[str, np.ndarray], images_BHWC: np.ndarray) -> np.ndarray:
    """frx's float32 logits of images in [-1, 1] (matmuls in float32 whatever the run trained in)."""
    import dataclasses

    from flax import nnx

    from frx import convert

    model = convert.model_with_params(dataclasses.replace(cfg.model, dtype="float32"), params, cfg.mup)
    return np.asarray(nnx.jit(lambda m, x: m(x))(model, images_BHWC))


def timm_logits(path: str, images_BHWC: np.ndarray) -> np.ndarray:
    """Logits of the timm model that a timm export describes (its metadata), loaded with strict=True."""
    import timm.models.vision_transformer as vit
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(path, "np") as f:
        metadata = f.metadata()
    kwargs = json.loads(metadata["timm_kwargs"])
    model = vit.VisionTransformer(**kwargs)
    rep = int(metadata.get("frx_pre_logits", "0"))
    if rep:
        model.head = torch.nn.Sequential(torch.nn.Linear(kwargs["embed_dim"], rep), torch.nn.Tanh(),
                                         torch.nn.Linear(rep, kwargs["num_classes"]))
    model.load_state_dict(load_file(path), strict=True)
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(images_BHWC.transpose(0, 3, 1, 2)))).numpy()


def check_timm_export(workdir: str, path: str, count: int = 8, seed: int = 0) -> float:
    """Max |frx logits - timm logits| on `count` random images in [-1, 1]."""
    cfg, params = weights.as_vit(*weights.read_run_params(workdir)[::2])
    size = cfg.model.image_size
    images = np.random.default_rng(seed).uniform(-1, 1, (count, size, size, 3)).astype(np.float32)
    diff = np.abs(frx_logits(cfg, params, images) - timm_logits(path, images))
    return float(diff.max()) if math.isfinite(diff.max()) else float("inf")
