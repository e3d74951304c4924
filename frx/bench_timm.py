"""The timm contenders of `frx bench --compare timm`: the same ViT in PyTorch, eager and under
`torch.compile`, each one train step per call, on the same machine and in the same process as frx's
step so that their ratio is measured under one load.

The model is timm's `VisionTransformer` with frx's sizes (width, depth, heads, MLP, patch, image size,
classes) and pooling (gap -> global_pool="avg" without a class token, tok -> a class token, map ->
attention pooling); the step is cross-entropy, gradient clipping at the preset's norm and AdamW with
the preset's learning rate, bfloat16 through `torch.autocast` when the frx model computes in bfloat16.
Differences that do not change the FLOPs are kept (timm's learned position embedding, exact GELU).
timm imports torchvision at import time without using it for a ViT; where none is installed the inert
stub in benchmarks/stubs stands in while timm is imported (tests/support/timm_support.py explains).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time

from frx.config import ConfigError, TrainConfig, ViTConfig

STUBS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "stubs")
POOLS = {"gap": "avg", "tok": "token", "map": "map"}


def import_timm():
    """(torch, timm's vision_transformer module), or a ConfigError naming what to install."""
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("timm") is None:
        raise ConfigError("--compare timm needs torch and timm; install them "
                          "(./dev does: torch CPU and timm --no-deps)")
    import torch

    if "timm" not in sys.modules and importlib.util.find_spec("torchvision") is None and os.path.isdir(STUBS):
        sys.path.insert(0, STUBS)
        try:
            import timm  # noqa: F401
        finally:
            sys.path.remove(STUBS)
    import timm.models.vision_transformer as vit

    return torch, vit


def check(cfg: TrainConfig) -> None:
    if cfg.task != "classification" or not isinstance(cfg.model, ViTConfig):
        raise ConfigError("--compare timm compares classification ViTs; this preset trains "
                          f"{cfg.task} with a {cfg.model.kind} model: run frx bench without --compare")
    if cfg.model.pool not in POOLS:
        raise ConfigError(f"--compare timm has no timm pooling for model.pool={cfg.model.pool}; use gap, tok or map")


def make_model(cfg: TrainConfig):
    torch, vit = import_timm()
    model, dims = cfg.model, cfg.model.dims()
    return torch, vit.VisionTransformer(
        img_size=model.image_size, patch_size=dims.patch_size, num_classes=model.num_classes,
        global_pool=POOLS[model.pool], class_token=model.pool == "tok", embed_dim=dims.width, depth=dims.depth,
        num_heads=dims.num_heads, mlp_ratio=dims.mlp_dim / dims.width,
    )


def make_step(cfg: TrainConfig, compiled: bool):
    """A function running one synchronised timm train step on a fixed random batch."""
    torch, model = make_model(cfg)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(device)
    forward = torch.compile(model) if compiled else model
    # big_vision's decoupled decay is not multiplied by the learning rate; AdamW's is.
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.wd / cfg.optim.lr)
    size = cfg.model.image_size
    x = torch.randn(cfg.batch_size, 3, size, size, device=device)
    y = torch.randint(0, cfg.model.num_classes, (cfg.batch_size,), device=device)
    from frx import hardware

    bf16 = hardware.resolve_dtype(cfg.model.dtype) == "bfloat16"

    def run():
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(forward(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.grad_clip_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip_norm)
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    return run, torch, device


def make_contenders(cfg: TrainConfig) -> tuple[dict, dict]:
    """({name: run()}, {name: description}) for timm eager and timm under torch.compile; the first call
    of each (torch.compile's compilation) is made here and timed."""
    check(cfg)
    contenders, info = {}, {}
    for name, compiled in (("timm eager", False), ("timm torch.compile", True)):
        run, torch, device = make_step(cfg, compiled)
        start = time.perf_counter()
        run()
        first = time.perf_counter() - start
        contenders[name] = run
        threads = f"{torch.get_num_threads()} threads" if device == "cpu" else torch.cuda.get_device_name()
        info[name] = f"torch {torch.__version__}, {threads}, first step {first:.1f} s"
    return contenders, info
