"""Coordinate checks beyond the ViT: the four that flax-mup publishes (flax_mup/test/__main__.py), an
MLP and a CNN, each with a cross-entropy and with an L2 regression loss, here on plain Flax NNX models
(nnx.Linear, nnx.Conv: nothing from frx) parametrized by `frx.mup.parametrize_by_shapes` and trained by
a plain Optax optimizer chained with `frx.mup.scale_adam_by_mup` / `scale_sgd_by_mup`. That is what a
user of frx's μP on their own model does, so the check covers it end to end.

The batch is fixed and synthetic (inputs N(0, 1); class ids uniform over 10 classes for the
cross-entropy, N(0, 1) targets of 10 values for the L2 loss), seeded, so the check needs no data. The
recording and judging are `frx.coord_check`'s: mean |x| of every layer's output before each update
(nnx.capture of each submodule's __call__), the readout named `logits`; the same slope test.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from frx import coord_check, mup
from frx.config import ConfigError

NETS = ("mlp", "cnn")
LOSSES = ("xent", "l2")
OPTIMIZERS = ("adam", "sgd")
NUM_OUTPUTS = 10
IMAGE_SHAPE = (8, 8, 3)
REPORTED = [(r"readout\.__call__", "logits"), (r"(\w+)\.__call__", "{module}")]


class Mlp(nnx.Module):
    """flax-mup's MLP: flattened input -> width -> width -> readout, ReLU between."""

    def __init__(self, width: int, rngs: nnx.Rngs):
        self.dense1 = nnx.Linear(int(np.prod(IMAGE_SHAPE)), width, rngs=rngs)
        self.dense2 = nnx.Linear(width, width, rngs=rngs)
        self.readout = nnx.Linear(width, NUM_OUTPUTS, rngs=rngs)

    def __call__(self, x):
        x = jax.nn.relu(self.dense1(x.reshape(x.shape[0], -1)))
        return self.readout(jax.nn.relu(self.dense2(x)))


class Cnn(nnx.Module):
    """A small CNN: 3x3 conv to width, 3x3 conv width -> width with stride 2, global average pool,
    readout; ReLU between."""

    def __init__(self, width: int, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(IMAGE_SHAPE[-1], width, (3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(width, width, (3, 3), strides=(2, 2), rngs=rngs)
        self.readout = nnx.Linear(width, NUM_OUTPUTS, rngs=rngs)

    def __call__(self, x):
        x = jax.nn.relu(self.conv2(jax.nn.relu(self.conv1(x))))
        return self.readout(jnp.mean(x, axis=(1, 2)))


def make_net(net: str, width: int, seed: int):
    return {"mlp": Mlp, "cnn": Cnn}[net](width, nnx.Rngs(seed))


def fixed_batch(loss: str, batch_size: int, seed: int = 0) -> dict:
    """Synthetic inputs and targets (class ids for xent, N(0, 1) vectors for l2)."""
    k_x, k_y = jax.random.split(jax.random.PRNGKey(seed))
    x = jax.random.normal(k_x, (batch_size, *IMAGE_SHAPE))
    if loss == "xent":
        return {"x": x, "y": jax.random.randint(k_y, (batch_size,), 0, NUM_OUTPUTS)}
    return {"x": x, "y": jax.random.normal(k_y, (batch_size, NUM_OUTPUTS))}


def loss_fn(loss: str):
    if loss == "xent":
        return lambda out, y: jnp.mean(optax.softmax_cross_entropy_with_integer_labels(out, y))
    return lambda out, y: 0.5 * jnp.mean(jnp.sum((out - y) ** 2, axis=-1))


def make_optimizer(optimizer: str, lr: float, table, momentum: float = 0.9):
    """The optimizer a user would write, then μP's scaling last (none for SP: `table` is None)."""
    base = optax.adam(lr) if optimizer == "adam" else optax.sgd(lr, momentum=momentum)
    if table is None:
        return base
    scale = mup.scale_adam_by_mup if optimizer == "adam" else mup.scale_sgd_by_mup
    return optax.chain(base, scale(table))


def _make_step(graphdef, tx, loss: str):
    compute = loss_fn(loss)

    def loss_and_stats(params, batch):
        capture = nnx.capture(lambda model, b: compute(model(b["x"]), b["y"]), nnx.Intermediate,
                              method_outputs=nnx.Intermediate)
        value, intermediates = capture(nnx.merge(graphdef, params), batch)
        reported, _ = coord_check._reported_outputs(nnx.to_pure_dict(intermediates), REPORTED)
        return value, {name: jnp.mean(jnp.abs(v)) for name, v in reported.items()}

    def step(params, opt_state, batch):
        (_, stats), grads = jax.value_and_grad(loss_and_stats, has_aux=True)(params, batch)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, stats

    return jax.jit(step)


def run(net: str, loss: str, widths, *, param: str = "mup", optimizer: str = "adam", lr: float | None = None,
        steps: int = 3, seeds: int = 3, base_width: int | None = None, batch_size: int = 32,
        init_std_mult: float = 1.0, log=print) -> dict:
    """The check of `net` with `loss`; returns frx.coord_check's result format (`param` reads e.g.
    "mup mlp/xent adam")."""
    if net not in NETS or loss not in LOSSES or optimizer not in OPTIMIZERS or param not in ("sp", "mup"):
        raise ConfigError(f"coord-check targets are {NETS} x losses {LOSSES} x {OPTIMIZERS} x sp|mup; "
                          f"got {net}/{loss}/{optimizer}/{param}")
    if steps < 1 or seeds < 1 or len(widths) < 2:
        raise ConfigError("coord-check needs --steps >= 1, --seeds >= 1 and at least two --widths")
    widths = tuple(sorted(widths))
    base_width = base_width or widths[0]
    lr = lr if lr is not None else {"adam": 1e-2, "sgd": 0.1}[optimizer]  # flax-mup's Adam lr; SGD 10x its
    batch = fixed_batch(loss, batch_size)
    log(f"coord check: {param} {net}/{loss}, widths {list(widths)}, {steps} steps x {seeds} seeds, "
        f"{optimizer} lr {lr:g}, batch {batch_size}" + (f", base width {base_width}" if param == "mup" else ""))
    sums: dict[str, dict[int, np.ndarray]] = {}
    for width in widths:
        base = nnx.eval_shape(lambda: make_net(net, base_width, 0))
        for seed in range(seeds):
            model = make_net(net, width, seed)
            # SP: relative to itself (every m = 1), so only sigma applies and the optimizer is left plain
            table = mup.parametrize_by_shapes(model, base if param == "mup" else model, init_std_mult)
            table = table if param == "mup" else None
            graphdef, params = nnx.split(model, nnx.Param)
            params = nnx.to_pure_dict(params)
            if seed == 0:  # the roles, hence the optimizer and the step, are the same for every seed
                tx = make_optimizer(optimizer, lr, table)
                step = _make_step(graphdef, tx, loss)
            opt_state = tx.init(params)
            for t in range(steps):
                params, opt_state, stats = step(params, opt_state, batch)
                for name, value in jax.device_get(stats).items():
                    sums.setdefault(name, {}).setdefault(width, np.zeros(steps))[t] += float(value)
        log(f"  width {width}: done")
    order = {name: i for i, name in enumerate(sums)}  # forward order of the first trace
    modules = {name: {str(w): [v / seeds for v in sums[name][w].tolist()] for w in widths}
               for name in sorted(sums, key=lambda n: (n == "logits", order[n]))}
    return {"param": f"{param} {net}/{loss} {optimizer}", "widths": list(widths), "modules": modules}
