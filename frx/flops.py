"""Analytic FLOPs of a train step, for MFU (model FLOPs utilisation).

Convention (PaLM, appendix B; Kaplan et al. 2020, section 2.1): a train step costs 6 x the forward
pass's multiply-accumulates (2 FLOPs per MAC forward, twice that backward), counting every matrix
multiply of the model, attention's two (scores and weighted values) included, and nothing else:
normalisations, activations, softmax, the optimizer and the gradient with respect to the images are
left out, and a rematerialised forward pass is not counted again (MFU measures the model's FLOPs, not
the hardware's). `tests/test_flops.py` checks the count against XLA's cost analysis of the compiled step.

Only the config is read (no JAX), so any layer may ask.
"""

from __future__ import annotations

from frx.config import AnyModelConfig, TextConfig, TrainConfig, TwoTowerConfig, ViTConfig


def encoder_block_macs(tokens: int, width: int, mlp_dim: int) -> int:
    """MACs of one pre-LN block on one sequence: q, k, v, out projections, scores, weighted values, MLP.
    Causal attention is counted whole: XLA computes the masked half too."""
    return tokens * (4 * width * width + 2 * width * mlp_dim) + 2 * tokens * tokens * width


def map_head_macs(tokens: int, width: int, mlp_dim: int) -> int:
    """MACs of attention pooling: one probe query over `tokens` keys and values, then the MLP."""
    return 2 * width * width + 2 * tokens * width * width + 2 * tokens * width + 2 * width * mlp_dim


def vit_forward_macs(cfg: ViTConfig) -> int:
    """Forward MACs of one image through the ViT of `cfg`, head included."""
    dims = cfg.dims()
    grid = cfg.image_size // dims.patch_size
    patches = grid * grid
    tokens = patches + (1 if cfg.pool == "tok" else 0)
    macs = patches * dims.patch_size**2 * 3 * dims.width
    macs += dims.depth * encoder_block_macs(tokens, dims.width, dims.mlp_dim)
    if cfg.pool == "map":
        macs += map_head_macs(tokens, dims.width, dims.mlp_dim)
    if cfg.pre_logits_size:
        macs += dims.width * cfg.pre_logits_size
    return macs + (cfg.pre_logits_size or dims.width) * cfg.num_classes


def text_forward_macs(cfg: TextConfig, embed_dim: int) -> int:
    """Forward MACs of one caption through the text tower (the token embedding is a lookup: none)."""
    macs = cfg.depth * encoder_block_macs(cfg.context_length, cfg.width, cfg.mlp_size)
    if cfg.pool == "map":
        macs += map_head_macs(cfg.context_length, cfg.width, cfg.mlp_size)
    return macs + cfg.width * embed_dim


def forward_macs(model: AnyModelConfig, batch_size: int) -> int | None:
    """Forward MACs of a whole global batch (None for a model kind without a count here). Two towers
    add the batch x batch similarity matrix."""
    if isinstance(model, ViTConfig):
        return batch_size * vit_forward_macs(model)
    if isinstance(model, TwoTowerConfig):
        per_pair = vit_forward_macs(model.image_tower()) + text_forward_macs(model.text_tower(), model.embed_dim)
        return batch_size * per_pair + batch_size * batch_size * model.embed_dim
    return None


def train_step_flops(cfg: TrainConfig) -> int | None:
    """Model FLOPs of one train step of `cfg` (6 x forward MACs of the global batch), or None."""
    macs = forward_macs(cfg.model, cfg.batch_size)
    return None if macs is None else 6 * macs
