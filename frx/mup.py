"""The one place muP (maximal update parametrization, Yang et al. 2022, "Tensor Programs V") lives.

muP is defined relative to a *base model*: the run's model at `mup.base_width` (and optionally
`base_mlp_dim`, `base_num_heads`). Every dimension whose size differs between the two is a width
that scales; the others are finite. Comparing the two models' parameter shapes gives each
parameter a role and its fan-in / fan-out multipliers m_in, m_out (target size / base size):

    role     what                                         fan-in   fan-out  examples
    input    weight from finite to width                  finite   width    embedding/kernel
    vector   non-matrix with a width axis                 -        width    biases, LayerNorm, pos_embedding, cls, probe
    hidden   weight from width to width                   width    width    q/k/v/out, fc1/fc2, pre_logits
    output   weight from width to finite (the readout)    width    finite   head/kernel
    finite   nothing scales                               finite   finite   head/bias

and muP prescribes, per role (../shared/spec/mup.md section 2, readout in "form A", i.e. microsoft/mup
MuReadout = TP5 Table 8):

    role     init std (vs base)     forward                 Adam lr    SGD lr
    input    base std               x alpha_in on its input  eta        eta * m_out
    vector   base std               -                       eta        eta * m_out
    hidden   base std / sqrt(m_in)  -                       eta / m_in  eta * m_out / m_in
    output   base std (or 0)        x alpha_out / m_in       eta        eta * m_in
    finite   base std               -                       eta        eta
    attention logits                alpha_attn * sqrt(dh_base) / dh  (SP: 1 / sqrt(dh))

"base std" is the std that frx's SP initialiser of that parameter has *at the base shape* (each
parameter carries its initialiser's law, frx.models.inits), so e.g. a learned position embedding keeps
std 1/sqrt(base_width) at every width, and a hidden xavier kernel keeps its SP init whenever its fan-in
and fan-out scale alike. Weight decay: frx's `wd` is big_vision's decoupled decay, p -= m(t)*wd*p, not
multiplied by the learning rate, so the per-step decay is already width-invariant and every muP weight-
decay factor is 1 (a decay coupled to the lr, as in PyTorch's AdamW, would need 1 / lr factor instead).

sigma, the global init multiplier (`mup.init_std_mult`, microsoft/mup's `init_std` relative to the
base init; ../shared/spec/mup.md "sigma^2 = the init variance, tuned at the base width"), multiplies
every random initial value in both parametrizations, after the per-role factor above; constants
(zeros, ones, LayerNorm) are not random and stay. Being tuned at the base width, it transfers like eta.

At width == base width every multiplier is exactly 1 and the attention scale is exactly SP's, and
nothing is applied where a factor is 1, so muP is bit-identical to SP there.

Entry points: `make_model` / `optimizer_multipliers` for frx models built from a config (`--mup.*`),
and `parametrize` / `lr_multipliers` for any NNX module built from frx layers and its base module.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re

import jax.numpy as jnp
from flax import nnx

from frx import models, param_paths, umup
from frx.config import AnyModelConfig, ConfigError, MupConfig
from frx.models import inits, layers

ROLES = ("input", "vector", "hidden", "output", "finite")
NORM_PARAM = r"(.*/)?[^/]*norm[^/]*/(scale|bias)"
"""Parameters created by Flax's LayerNorm (no init law): ones/zeros, the same at every width."""
QUERY_KERNEL = r"(.*/)?attn/q/kernel"
"""The query kernels that `mup.zero_init_queries` sets to zero."""


@dataclasses.dataclass(frozen=True)
class ParamRole:
    """One parameter compared with its counterpart in the base model."""

    path: str
    role: str
    shape: tuple[int, ...]
    base_shape: tuple[int, ...]
    fan_in_mult: float
    """m_in: fan-in / base fan-in (1 for vector-like parameters)."""
    fan_out_mult: float
    """m_out: fan-out / base fan-out (for a vector, its size / base size)."""
    sp_std: float
    """The SP initial std at this shape."""
    base_std: float
    """The SP initial std at the base shape."""
    fan_in: int | None = None
    """The absolute fan-in of a weight (None for vectors); u-μP's factors read it."""
    readout: str = "A"
    """How the output role is parametrized: "A" (frx layers: a 1/m multiplier on the readout's input,
    base init, Adam lr eta) or "B" (any Flax model, `roles_from_shapes`: no multiplier, init and Adam lr
    divided by m, TP5 Table 3 / flax-mup)."""


# --------------------------------------------------------------------------------------------------
# Roles


def base_model_config(model: AnyModelConfig, mup: MupConfig) -> AnyModelConfig:
    """The model that muP is relative to: `model` with the base width, MLP size and heads (the
    model's MLP ratio and heads unless `mup.base_mlp_dim` / `base_num_heads` say otherwise)."""
    dims = model.dims()
    if mup.param == "umup":  # no base model: roles only, against twice the widths (frx.umup)
        return model.with_dims(width=2 * dims.width, mlp_dim=2 * dims.mlp_dim, num_heads=dims.num_heads)
    width = mup.base_width if mup.base_width is not None else dims.width
    if mup.base_mlp_dim is not None:
        mlp_dim = mup.base_mlp_dim
    else:
        mlp_dim, rest = divmod(dims.mlp_dim * width, dims.width)
        if rest:
            raise ConfigError(
                f"mlp_dim {dims.mlp_dim} x base_width {width} / width {dims.width} is not an integer; "
                "set --mup.base_mlp_dim"
            )
    heads = mup.base_num_heads if mup.base_num_heads is not None else dims.num_heads
    if width % heads:
        raise ConfigError(
            f"muP base width {width} is not divisible by base heads {heads}; "
            "change --mup.base_width or set --mup.base_num_heads"
        )
    if getattr(model, "posemb", None) == "sincos2d" and width % 4:
        raise ConfigError(f"sincos2d position embedding needs a muP base width divisible by 4, got {width}")
    return model.with_dims(width=width, mlp_dim=mlp_dim, num_heads=heads)


def check(model: AnyModelConfig, mup: MupConfig) -> None:
    """Raises ConfigError when `mup` cannot parametrize `model` (its base model does not exist)."""
    if mup.param != "sp":
        base_model_config(model, mup)


def _abstract(model_cfg: AnyModelConfig):
    return nnx.eval_shape(lambda: models.make(model_cfg, 0))


def _params_with_paths(module) -> dict[str, nnx.Variable]:
    return {param_paths.path_str(p): v for p, v in nnx.iter_graph(module) if isinstance(v, nnx.Param)}


def _law_std(path: str, variable, shape) -> float:
    law = inits.get_law(variable)
    if law is None:
        return 0.0  # a NORM_PARAM (checked by the caller): constant init
    if not hasattr(law.initializer, "std"):
        raise ConfigError(
            f"parameter {path} was initialised with {law.initializer!r}, which does not state its std; "
            "use an initialiser from frx.models.inits"
        )
    return law.std(shape)


def _role(fan_in: int | None, m_in: float, m_out: float) -> str:
    if fan_in is None:
        return "finite" if m_out == 1 else "vector"
    if m_in == 1:
        return "finite" if m_out == 1 else "input"
    return "hidden" if m_out != 1 else "output"


def roles_of(module, base_module) -> dict[str, ParamRole]:
    """path -> ParamRole for every parameter of `module`, relative to `base_module` (the same
    architecture at the base widths). Either may be abstract (`nnx.eval_shape`); any nnx module
    whose parameters carry init laws works (frx.models.inits)."""
    target, base = _params_with_paths(module), _params_with_paths(base_module)
    if set(target) != set(base):
        missing = sorted(set(target) ^ set(base))[:3]
        raise ConfigError(
            f"the muP base model has other parameters than the model ({missing} ...): the base may differ "
            "only in widths (mup.base_width, base_mlp_dim, base_num_heads), not in depth or layers"
        )
    table = {}
    for path, var in target.items():
        law, base_law = inits.get_law(var), inits.get_law(base[path])
        if law is None and not re.fullmatch(NORM_PARAM, path):
            raise ConfigError(
                f"parameter {path} has no init law, so muP cannot tell its role and initial scale; "
                "create it with frx.models.inits.param(...)"
            )
        shape, base_shape = tuple(var.shape), tuple(base[path].shape)
        fan_in = law.fan_in if law else None
        base_fan_in = base_law.fan_in if base_law else None
        m_in = fan_in / base_fan_in if fan_in else 1.0
        m_out = (math.prod(shape) / (fan_in or 1)) / (math.prod(base_shape) / (base_fan_in or 1))
        table[path] = ParamRole(
            path=path,
            role=_role(fan_in, m_in, m_out),
            shape=shape,
            base_shape=base_shape,
            fan_in_mult=m_in,
            fan_out_mult=m_out,
            sp_std=_law_std(path, var, law.shape if law else shape),
            base_std=_law_std(path, base[path], base_law.shape if base_law else base_shape),
            fan_in=fan_in,
        )
    return table


@functools.lru_cache(maxsize=64)
def _relative_to_base(model: AnyModelConfig, mup: MupConfig) -> tuple[dict[str, ParamRole], dict[str, int]]:
    """(roles, attention head sizes of the base model): both come from one trace of the base model,
    which is the costly part; cached, since every build of the same configs needs the same."""
    base = _abstract(base_model_config(model, mup))
    return roles_of(_abstract(model), base), _attention_head_dims(base)


def roles(model: AnyModelConfig, mup: MupConfig) -> dict[str, ParamRole]:
    """path -> ParamRole for every parameter of the frx model `model`, relative to its muP base model."""
    return _relative_to_base(model, mup)[0]


# --------------------------------------------------------------------------------------------------
# Per-role factors


def _exact_one(x: float) -> float:
    """Factors that are 1 up to float rounding become exactly 1 (and are then not applied)."""
    return 1.0 if abs(x - 1.0) < 1e-12 else x


def init_factor(r: ParamRole) -> float:
    """muP initial std / SP initial std, for the parameter at its own shape."""
    if r.sp_std == 0.0:
        return 1.0  # constants (zeros, ones, offsets) are the same at every width
    std = r.base_std / math.sqrt(r.fan_in_mult) if r.role == "hidden" else r.base_std
    return _exact_one(std / r.sp_std)


def _init_factor(r: ParamRole, param: str) -> float:
    """init_factor of μP, or of u-μP (frx.umup: unit variance)."""
    if param != "umup":
        return init_factor(r)
    std = umup.init_std(r)
    return 1.0 if std is None else _exact_one(std / r.sp_std)


def _lr_factor(r: ParamRole, optimizer: str, param: str) -> float:
    return umup.lr_factor(r, optimizer) if param == "umup" else lr_factor(r, optimizer)


def lr_factor(r: ParamRole, optimizer: str) -> float:
    """Multiplier of the global learning rate (tuned at the base width) for this parameter.

    Adam-like optimizers (entrywise normalised updates) and SGD-like ones differ; mup/optim.py's
    MuAdam / MuSGD semantics with form-A readout (../shared/spec/mup.md section 2).
    """
    m_in, m_out = r.fan_in_mult, r.fan_out_mult
    # Form B's readout W' = W / m of form A's W: Adam's update of W' is eta / m, SGD's gradient of W' is
    # m times W's, so form A's SGD lr eta * m becomes eta / m (../shared/spec/mup.md section 2).
    output = {"A": {"adam": 1.0, "sgd": m_in}, "B": {"adam": 1.0 / m_in, "sgd": 1.0 / m_in}}[r.readout]
    if optimizer == "adam":
        factor = {"input": 1.0, "vector": 1.0, "hidden": 1.0 / m_in, "output": output["adam"], "finite": 1.0}[r.role]
    elif optimizer == "sgd":
        factor = {"input": m_out, "vector": m_out, "hidden": m_out / m_in, "output": output["sgd"], "finite": 1.0}[r.role]
    else:
        raise ConfigError(f"muP has no learning-rate rule for optimizer {optimizer!r}; use adam or sgd")
    return _exact_one(factor)


def wd_factor(r: ParamRole, optimizer: str) -> float:
    """Multiplier of the weight decay: 1, because frx's decay is decoupled from the lr (big_vision:
    p -= schedule * wd * p), so the per-step decay of every parameter is width-invariant already."""
    del r, optimizer
    return 1.0


def readout_multiplier(r: ParamRole, mup: MupConfig) -> float:
    """Form-A readout: the output layer computes W (alpha_out / m_in * x)."""
    return _exact_one(mup.output_alpha / r.fan_in_mult)


def attention_scale(head_dim: int, base_head_dim: int, mup: MupConfig) -> float:
    """muP's 1/d_head attention, as alpha * sqrt(dh_base) / dh, written so that it is *exactly* SP's
    dh**-0.5 when dh == dh_base and alpha == 1 (microsoft/mup README: "8/d" keeps d = 64 unchanged)."""
    return mup.attn_alpha * base_head_dim**-0.5 * (base_head_dim / head_dim)


# --------------------------------------------------------------------------------------------------
# Building a model and its optimizer multipliers


def _attention_head_dims(module) -> dict[str, int]:
    return {
        param_paths.path_str(p): node.q.out_shape[-1]
        for p, node in nnx.iter_graph(module)
        if isinstance(node, layers.Attention)
    }


def _set_multipliers(module, table: dict[str, ParamRole], base_head_dims: dict[str, int], mup: MupConfig) -> None:
    """Sets muP's forward multipliers (static attributes) on a freshly built module, in place."""
    for p, node in list(nnx.iter_graph(module)):
        path = param_paths.path_str(p)
        if isinstance(node, layers.Dense) and mup.param == "umup":
            kernel = table[f"{path}/kernel"]
            alpha = {"input": mup.input_alpha, "output": mup.output_alpha}.get(kernel.role, 1.0)
            node.input_multiplier = _exact_one(alpha * umup.forward_multiplier(kernel))
        elif isinstance(node, layers.Dense):
            kernel = table[f"{path}/kernel"]
            if kernel.role == "output":
                node.input_multiplier = readout_multiplier(kernel, mup)
            elif kernel.role == "input":
                node.input_multiplier = mup.input_alpha
        if isinstance(node, layers.Attention) and mup.param == "umup":
            node.scale = umup.attention_scale(node.q.out_shape[-1], mup.attn_alpha)
        elif isinstance(node, layers.Attention):
            node.scale = attention_scale(node.q.out_shape[-1], base_head_dims[path], mup)


def _rescale_init(module, table: dict[str, ParamRole], mup: MupConfig) -> None:
    """Turns SP's initial values into muP's (in place) and multiplies every random initial value by
    `mup.init_std_mult` (any param); zeroes the queries if asked (any param)."""
    for path, var in _params_with_paths(module).items():
        if mup.zero_init_queries and re.fullmatch(QUERY_KERNEL, path):
            var[...] = jnp.zeros_like(var[...])  # not x * 0, which keeps signed zeros
            continue
        factor = _init_factor(table[path], mup.param) if path in table else 1.0
        if _is_random(var):
            factor *= mup.init_std_mult
        if factor != 1.0:
            var[...] = var[...] * factor


def _is_random(variable) -> bool:
    """Whether the parameter was drawn with a std > 0 (not a constant, not a Flax LayerNorm's ones/zeros)."""
    law = inits.get_law(variable)
    return law is not None and law.std() > 0


def parametrize(module, base_module, mup: MupConfig) -> dict[str, ParamRole]:
    """Applies `mup` in place to a freshly initialised nnx module of any architecture built from frx
    layers, relative to `base_module` (the same architecture at the base widths; abstract is fine):
    forward multipliers, attention scales and initial values. Returns the roles, for
    `lr_multipliers`. With `mup.param == "sp"` only `zero_init_queries` and `init_std_mult` apply."""
    return _apply(module, mup, lambda: (roles_of(module, base_module), _attention_head_dims(base_module)))


def make_model(model: AnyModelConfig, mup: MupConfig | None = None, seed: int = 0):
    """The frx model of `model` under the parametrization `mup` (default SP), initialised from `seed`."""
    module = models.make(model, seed)
    if mup is not None:
        _apply(module, mup, lambda: _relative_to_base(model, mup))
    return module


def _apply(module, mup: MupConfig, relative_to_base) -> dict[str, ParamRole]:
    """What `parametrize` and `make_model` share. `relative_to_base()` gives (roles, base head
    sizes); it is called only under muP, since SP needs neither and they cost a trace of the base."""
    table = {}
    if mup.param in ("mup", "umup"):
        table, base_head_dims = relative_to_base()
        _set_multipliers(module, table, base_head_dims, mup)
    _rescale_init(module, table, mup)
    return table


def lr_multipliers(table: dict[str, ParamRole], optimizer: str, params, param: str = "mup"):
    """(lr factors, wd factors) as trees shaped like `params` (paths as in `table`) for
    `frx.optim.make(..., extra_lr_mults=, extra_wd_mults=)`; `param` "umup" for u-μP's rules."""
    lr = param_paths.map_with_path(lambda path, _: _lr_factor(table[path], optimizer, param), params)
    wd = param_paths.map_with_path(lambda path, _: wd_factor(table[path], optimizer), params)
    return lr, wd


def optimizer_multipliers(model: AnyModelConfig, mup: MupConfig, optimizer: str, params):
    """`lr_multipliers` for the frx model `model`; (None, None) for SP."""
    if mup.param == "sp":
        return None, None
    return lr_multipliers(roles(model, mup), optimizer, params, mup.param)


def describe(model: AnyModelConfig, mup: MupConfig, optimizer: str) -> str:
    """A table of every parameter's role and muP factors (what `frx coord-check` prints first)."""
    base = base_model_config(model, mup).dims()
    title = (f"muP relative to base width {base.width} (mlp {base.mlp_dim}, heads {base.num_heads}); "
             f"{optimizer} learning-rate rules; readout form A")
    if mup.param == "umup":
        title = f"u-muP (unit-variance init, absolute fan-in factors; frx.umup); {optimizer} learning-rate rules"
    rows = [
        title,
        f"{'parameter':<34} {'role':<7} {'shape':<18} {'m_in':>6} {'m_out':>6} {'init x':>8} {'lr x':>8}",
    ]
    for path, r in roles(model, mup).items():
        rows.append(
            f"{path:<34} {r.role:<7} {str(r.shape):<18} {r.fan_in_mult:>6.3g} {r.fan_out_mult:>6.3g} "
            f"{_init_factor(r, mup.param):>8.4g} {_lr_factor(r, optimizer, mup.param):>8.4g}"
        )
    return "\n".join(rows)


# --------------------------------------------------------------------------------------------------
# Any Flax NNX model and any Optax chain (the flax-mup way)


def roles_from_shapes(module, base_module) -> dict[str, ParamRole]:
    """path -> ParamRole for any Flax NNX module (nnx.Linear, nnx.Conv, nnx.Embed, nnx.LayerNorm ...),
    relative to `base_module` (the same architecture at the base widths; abstract is fine), from the
    parameter shapes alone, as flax-mup does (flax_mup/_mup.py): a dimension is a width iff its size
    differs from the base's. A parameter with 2 or more axes is a weight laid out (..., in, out), Flax's
    layout: fan-in is the product of every axis but the last, fan-out the last. Other parameters are
    vectors. The readout is in form B (`ParamRole.readout`): Flax layers have no input multiplier.
    Not for kernels with several output axes (nnx.MultiHeadAttention's (in, heads, head_dim)): build
    those from frx layers and use `roles_of`."""
    target, base = _params_with_paths(module), _params_with_paths(base_module)
    if set(target) != set(base):
        missing = sorted(set(target) ^ set(base))[:3]
        raise ConfigError(f"the muP base model has other parameters than the model ({missing} ...): it may differ "
                          "only in widths, not in depth or layers")
    table = {}
    for path, var in target.items():
        shape, base_shape = tuple(var.shape), tuple(base[path].shape)
        if len(shape) != len(base_shape):
            raise ConfigError(f"parameter {path} has shape {shape} but {base_shape} in the base model; "
                              "the base may differ only in the sizes of the axes")
        if len(shape) >= 2:
            fan_in = math.prod(shape[:-1])
            m_in, m_out = fan_in / math.prod(base_shape[:-1]), shape[-1] / base_shape[-1]
        else:
            fan_in, m_in, m_out = None, 1.0, math.prod(shape) / math.prod(base_shape)
        table[path] = ParamRole(path=path, role=_role(fan_in, m_in, m_out), shape=shape, base_shape=base_shape,
                                fan_in_mult=m_in, fan_out_mult=m_out, sp_std=math.nan, base_std=math.nan,
                                readout="B")
    return table


def parametrize_by_shapes(module, base_module, init_std_mult: float = 1.0) -> dict[str, ParamRole]:
    """μP for any Flax NNX module whose SP init has std ∝ 1/sqrt(fan_in) on weights and a width-free
    std elsewhere (Flax's defaults: lecun-normal kernels, zero biases, unit LayerNorm, N(0, 1) embeddings):
    in place, the readout weights are divided by sqrt(m_in) (form B: var ∝ 1/fan_in², flax-mup), then
    every parameter that is not constant is multiplied by `init_std_mult` (σ). Every other init already
    is μP's. Returns the roles, for `scale_adam_by_mup` / `scale_sgd_by_mup`."""
    table = roles_from_shapes(module, base_module)
    for path, var in _params_with_paths(module).items():
        factor = _exact_one(table[path].fan_in_mult ** -0.5) if table[path].role == "output" else 1.0
        value = var[...]
        if init_std_mult != 1.0 and value.size > 1 and bool(jnp.any(value != value.reshape(-1)[0])):
            factor *= init_std_mult
        if factor != 1.0:
            var[...] = value * factor
    return table


def _factor_lookup(table: dict[str, ParamRole], optimizer: str):
    factors = {path: lr_factor(r, optimizer) for path, r in table.items()}

    def factor(path: str) -> float:
        # nnx.state(model) trees end each path in the Variable's "value"; nnx.Optimizer's do not.
        for candidate in (path, path.removesuffix("/value")):
            if candidate in factors:
                return factors[candidate]
        raise ConfigError(f"the muP scaling has no role for parameter {path}; build the roles from the same model "
                          "the optimizer updates (mup.parametrize or mup.parametrize_by_shapes)")

    return factor


def _scale_by_roles(table: dict[str, ParamRole], optimizer: str):
    import optax

    factor = _factor_lookup(table, optimizer)

    def update(updates, state, params=None):
        del params

        def scale(path, u):
            f = factor(path)
            return u if f == 1.0 else u * jnp.asarray(f, u.dtype)

        return param_paths.map_with_path(scale, updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def scale_adam_by_mup(table: dict[str, ParamRole]):
    """An Optax transformation that multiplies each parameter's update by its μP Adam learning-rate
    factor (`lr_factor(role, "adam")`), for `optax.chain(optax.adam(lr), mup.scale_adam_by_mup(roles))`
    with any Adam-like optimizer (Adam, AdamW, RMSProp, Lion: entrywise-normalised updates).

    Assumption (as in flax-mup): it comes after the learning-rate scaling, last in the chain, or after
    anything else that is linear per parameter. A decay added inside the chain before it (optax.adamw)
    is scaled too: hidden weights then decay wd / m per step; frx's own optimizer keeps decay
    width-invariant instead (module docstring). `table` comes from `parametrize` (frx layers, form A)
    or `parametrize_by_shapes` (any Flax model, form B); the update trees may be nnx.Optimizer's or
    `nnx.state(model, nnx.Param)`'s."""
    return _scale_by_roles(table, "adam")


def scale_sgd_by_mup(table: dict[str, ParamRole]):
    """`scale_adam_by_mup` for SGD-like optimizers (SGD, with or without momentum): the SGD column of
    the table above (inputs and vectors x m_out, hidden m_out / m_in, readout m_in in form A and 1 / m_in
    in form B)."""
    return _scale_by_roles(table, "sgd")
