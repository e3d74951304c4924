"""u-μP, the unit-scaled maximal update parametrization (Blake et al. 2024, arXiv 2407.17465), its
abc-parametrization for Adam: what `--mup.param umup` does to frx's models.

u-μP moves μP's scale out of the initialisation into fixed multipliers, so that every weight starts
with unit variance and, with the multipliers, every activation starts with unit scale. It has no base
model: the factors depend on the absolute fan-in, not on a width ratio, and the learning rate eta is
a global constant of order 1 (the paper's Table 3, u-μP column; graphcore-research/unit-scaling
`unit_scaling/optim.py lr_scale_func_adam` and the `uu.Linear` / `uu.LinearReadout` modules):

    role     init           forward multiplier     Adam lr              frx parameters
    input    N(0, 1)        1 / sqrt(fan_in)       eta / sqrt(fan_in)    embedding/kernel (uu.Linear)
    vector   N(0, 1)        -                      eta / sqrt(fan_out)   pos_embedding, probe (embedding-like)
             0 / 1 (const)  -                      eta                   biases, LayerNorm, cls
    hidden   N(0, 1)        1 / sqrt(fan_in)       eta / sqrt(fan_in)    q/k/v/out, fc1/fc2, pre_logits
    output   N(0, 1) or 0   1 / fan_in             eta                   head/kernel (uu.LinearReadout)
    finite   as SP          -                      eta                   head/bias
    attention logits        attn_alpha / head_dim

The embedding-like vectors follow the paper's embedding rule (lr 1/sqrt(fan-out), "better than μP's
1", section 4.4): unit_scaling tags embeddings as weights whose "fan_in" is the width. frx's patch
embedding is a dense layer from pixels and gets `uu.Linear`'s rule, as in the u-μP ViT of EIFY/mup-vit.

The roles (which axes are widths) are those of `frx.mup`, found against a model of another width
(`mup.base_width`, default twice the width); only the role matters, not the base's size.

What frx's u-μP does not do (documented in docs/mup.md): the unit-scaled ops of Unit Scaling (separate
backward scales, scaled GELU / softmax / residual adds with the paper's tau rules) and the depth factor
1/sqrt(depth) of residual-branch learning rates that comes with them; `mup.input_alpha`,
`output_alpha` and `attn_alpha` play the role of the paper's few remaining alphas. Only the Adam rules
are implemented (`lr_factor` refuses SGD). Weight decay: frx's decoupled decay is unit_scaling's
`independent_weight_decay=True` (independent of the peak lr), so every decay factor is 1.
"""

from __future__ import annotations


def is_embedding_like(r) -> bool:
    """A vector-role parameter drawn at random that is not a bias (pos_embedding, MAP probe): an
    embedding table in u-μP's terms. Biases (big_vision draws the MLP's from N(0, 1e-6)) and norm
    gains are not."""
    return r.role == "vector" and r.sp_std > 0 and not r.path.endswith("bias")


def init_std(r) -> float | None:
    """u-μP's initial std of a parameter (1 for every random one), None where SP's is kept (constants;
    the readout's bias)."""
    if r.sp_std == 0.0 or r.role == "finite" or (r.role == "vector" and not is_embedding_like(r)):
        return None
    return 1.0


def forward_multiplier(r) -> float:
    """The multiplier on the input of a dense layer whose kernel has role `r.role`."""
    if r.role in ("input", "hidden"):
        return r.fan_in**-0.5
    if r.role == "output":
        return 1.0 / r.fan_in
    return 1.0


def lr_factor(r, optimizer: str) -> float:
    """Multiplier of the global learning rate eta for this parameter (u-μP for Adam)."""
    from frx.config import ConfigError

    if optimizer != "adam":
        raise ConfigError(f"u-muP's learning-rate rules are implemented for Adam only, not {optimizer!r}; "
                          "use --optim.name adam or --mup.param mup")
    if r.role in ("input", "hidden"):
        return r.fan_in**-0.5
    if is_embedding_like(r):
        return r.shape[-1] ** -0.5  # the embedding's width, its last axis
    return 1.0


def attention_scale(head_dim: int, attn_alpha: float) -> float:
    """u-μP's attention logits: attn_alpha / head_dim (unit_scaling's scaled_dot_product_attention)."""
    return attn_alpha / head_dim
