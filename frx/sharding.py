"""Device mesh and array layout. One code path for one CPU and many hosts: global `jax.Array`s with
`NamedSharding`, never pmap.

Mesh axes, outermost first: `data` (pure data parallel), `fsdp` (data parallel whose replicas also
shard parameters and optimizer state) and `tensor` (splits heads, MLP units and classes; innermost,
so its collectives stay inside a host). The batch is split over data x fsdp.

Parameters get logical axis names from their paths (each model's `LOGICAL_AXES`); a rule preset (`RULES`) maps
logical names to mesh axes. All axes are AxisType.Auto: jax.make_mesh defaults to Explicit axes
since jax 0.7, under which a plain jit of a batch-sharded gradient fails
(../shared/spec/environment_notes.md section 2).
"""

from __future__ import annotations

import math

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from frx import param_paths
from frx.config import ConfigError, MeshConfig, TrainConfig

DATA_AXIS, FSDP_AXIS, TENSOR_AXIS = "data", "fsdp", "tensor"
MESH_AXES = (DATA_AXIS, FSDP_AXIS, TENSOR_AXIS)
BATCH_AXES = (DATA_AXIS, FSDP_AXIS)

# --------------------------------------------------------------------------------------------------
# Mesh


def get_mesh_shape(cfg: MeshConfig, num_devices: int) -> tuple[int, int, int]:
    """(data, fsdp, tensor) sizes; a -1 takes the devices the others leave."""
    sizes = [cfg.data, cfg.fsdp, cfg.tensor]
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if num_devices % known:
            raise ConfigError(
                f"mesh sizes {_show(cfg)} need a multiple of {known} devices but {num_devices} are visible; "
                "change --mesh.fsdp / --mesh.tensor"
            )
        sizes[sizes.index(-1)] = num_devices // known
    if math.prod(sizes) > num_devices:
        raise ConfigError(
            f"mesh {_show(cfg)} needs {math.prod(sizes)} devices but only {num_devices} devices are visible; "
            "lower --mesh.data / --mesh.fsdp / --mesh.tensor"
        )
    return tuple(sizes)


def _show(cfg: MeshConfig) -> str:
    return f"data={cfg.data} fsdp={cfg.fsdp} tensor={cfg.tensor}"


def make_mesh(cfg: MeshConfig, devices=None) -> Mesh:
    """The (data, fsdp, tensor) mesh over `devices` (default: all devices of all processes).

    Device order comes from jax.make_mesh (physical topology on TPUs, process-major elsewhere), so
    `tensor` and then `fsdp` stay within a host and `data` spans hosts. With several TPU slices,
    the data axis is laid across slices (their link is the slowest) via a hybrid mesh.
    """
    devices = list(jax.devices() if devices is None else devices)
    shape = get_mesh_shape(cfg, len(devices))
    size = math.prod(shape)
    if size < len(devices):
        if jax.process_count() > 1:
            raise ConfigError(
                f"mesh {_show(cfg)} uses {size} of {len(devices)} devices; a multi-process run must use all "
                "of them (set one axis to -1)"
            )
        devices = devices[:size]
    axis_types = (AxisType.Auto,) * len(MESH_AXES)
    num_slices = len({getattr(d, "slice_index", 0) for d in devices})
    if num_slices > 1:
        from jax.experimental import mesh_utils

        if shape[0] % num_slices:
            raise ConfigError(f"mesh.data={shape[0]} must be a multiple of the {num_slices} slices (data spans slices)")
        per_slice = (shape[0] // num_slices,) + shape[1:]
        grid = mesh_utils.create_hybrid_device_mesh(per_slice, (num_slices, 1, 1), devices)
        return Mesh(grid, MESH_AXES, axis_types=axis_types)
    return jax.make_mesh(shape, MESH_AXES, axis_types=axis_types, devices=devices)


def describe(cfg: MeshConfig, mesh: Mesh) -> str:
    """One line, e.g. "8 cpu devices in 2 processes, mesh data=2 fsdp=4 tensor=1, rules fsdp"."""
    sizes = " ".join(f"{a}={mesh.shape[a]}" for a in MESH_AXES)
    platform = mesh.devices.flat[0].platform
    return (f"{mesh.devices.size} {platform} device(s) in {jax.process_count()} process(es), mesh {sizes}, "
            f"rules {resolve_rules(cfg, mesh)}")


def num_batch_shards(mesh: Mesh) -> int:
    """How many ways the batch is split (data x fsdp)."""
    return math.prod(mesh.shape[a] for a in BATCH_AXES if a in mesh.shape)


def batch_shards_in_context() -> int:
    """`num_batch_shards` of the mesh a jitted function is traced under (`under_mesh`); 1 without one."""
    mesh = jax.sharding.get_abstract_mesh()
    return 1 if mesh.empty else num_batch_shards(mesh)


def check_batch(cfg: TrainConfig, mesh: Mesh) -> None:
    """Each micro-batch must split evenly over the batch shards, and the batch over the processes."""
    shards = num_batch_shards(mesh)
    micro = cfg.batch_size // cfg.grad_accum
    if micro % shards:
        raise ConfigError(
            f"batch_size {cfg.batch_size} / grad_accum {cfg.grad_accum} = {micro} is not divisible by "
            f"{shards} data-parallel devices (data x fsdp); use a batch size that is a multiple of {shards * cfg.grad_accum}"
        )
    if cfg.eval.batch_size % shards:
        raise ConfigError(
            f"eval.batch_size {cfg.eval.batch_size} is not divisible by {shards} data-parallel devices "
            f"(data x fsdp); pick a multiple of {shards}"
        )
    _, count = process_batch_slice(mesh)
    if cfg.batch_size % count:
        raise ConfigError(f"batch_size {cfg.batch_size} is not divisible by {count} processes")


def resolve_rules(cfg: MeshConfig, mesh: Mesh) -> str:
    """The rule preset a run uses; "auto" picks the simplest one that uses every mesh axis."""
    if cfg.rules != "auto":
        return cfg.rules
    if mesh.shape[TENSOR_AXIS] > 1:
        return "tensor"
    return "fsdp" if mesh.shape[FSDP_AXIS] > 1 else "dp"


# --------------------------------------------------------------------------------------------------
# Logical axes of parameters. Each model declares (regex, names) rules for its own parameter paths
# (frx.models: `LOGICAL_AXES` of its module); the first full match wins. Names in use: `embed` (model
# width), `mlp` (MLP hidden), `heads`, `head_dim`, `classes`, `rep` (pre-logits), `tokens`, `patch`
# and `channels` (the patch-embedding input); a scalar parameter has the empty tuple.

# Rule presets: (logical name, mesh axis) in priority order. Each mesh axis shards at most one
# dimension of an array, and only a dimension it divides, so a parameter falls through to the next
# rule (e.g. a bias without an `embed` axis is sharded on `mlp`). Axes of size 1 are skipped, so
# "tensor" on a mesh without a tensor axis is "fsdp".
_FSDP = tuple((name, FSDP_AXIS) for name in ("embed", "mlp", "classes", "rep", "heads", "head_dim", "tokens"))
RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "dp": (),  # big_vision's default sharding_strategy [(".*", "replicate")]
    "fsdp": _FSDP,
    # Megatron-style: heads and MLP units split over `tensor` (the out / fc2 matmuls then reduce),
    # the class axis of a big head too; what is left of each array is sharded over fsdp.
    "tensor": (("heads", TENSOR_AXIS), ("mlp", TENSOR_AXIS), ("classes", TENSOR_AXIS), ("rep", TENSOR_AXIS)) + _FSDP,
    # Partial FC (insightface arcface_torch/partial_fc_v2.py): the class axis of a big head split over
    # every device, the rest as under fsdp; a sharded head then gathers the features, not the head.
    "classes": (("classes", MESH_AXES),) + _FSDP,
}


def logical_axes(params, axes_rules) -> dict:
    """A tree like `params` with a tuple of logical names per leaf, from the model's (regex, names)
    rules (raises on an unnamed parameter)."""

    def names(path: str, leaf):
        found = param_paths.first_match(axes_rules, path, None)
        if found is None:
            raise ValueError(f"parameter {path} has no logical axis names; add a rule to its model's LOGICAL_AXES")
        if len(found) != len(leaf.shape):
            raise ValueError(f"parameter {path} has shape {leaf.shape} but its logical axes are {found}")
        return found

    return param_paths.map_with_path(names, params)


def logical_to_spec(shape, names, rules, axis_sizes: dict[str, int]) -> P:
    """The PartitionSpec of one array: each rule, in order, claims the first free dimension carrying
    its logical name, if its mesh axis is unused in this array, larger than 1 and divides the size.
    A rule may name several mesh axes (a tuple): the dimension is split over those of them that are
    unused and larger than 1."""
    spec: list = [None] * len(shape)
    used = set()
    for logical, axis in rules:
        axes = tuple(a for a in (axis if isinstance(axis, tuple) else (axis,))
                     if a not in used and axis_sizes.get(a, 1) > 1)
        if not axes:
            continue
        size = math.prod(axis_sizes[a] for a in axes)
        for i, name in enumerate(names):
            if name == logical and spec[i] is None and shape[i] % size == 0:
                spec[i] = axes[0] if len(axes) == 1 else axes
                used.update(axes)
                break
    while spec and spec[-1] is None:
        spec.pop()
    return P(*spec)


def param_shardings(params, mesh: Mesh, rules: str, axes_rules):
    """NamedShardings for a params tree (arrays or ShapeDtypeStructs) under a rule preset, given the
    model's logical-axis rules (`frx.models.logical_axes_rules`)."""
    sizes = dict(mesh.shape)
    return jax.tree.map(
        lambda p, names: NamedSharding(mesh, logical_to_spec(p.shape, names, RULES[rules], sizes)),
        params, logical_axes(params, axes_rules), is_leaf=lambda x: isinstance(x, tuple),
    )


def state_shardings(shapes, params_sharding, mesh: Mesh) -> dict:
    """Shardings of the whole train state, given its shapes. An optimizer leaf that mirrors a parameter (Adam's mu and
    nu, momentum) takes that parameter's sharding; counts, step, rng and the rest are replicated.

    A leaf mirrors a parameter when its path ends with the parameter's path and the shapes agree
    (`1/0/mu/blocks/3/mlp/fc1/kernel`), which holds for any optax chain, masked or multi-transform.
    """
    by_path = {path: (leaf.shape, s) for (path, leaf), s in zip(
        _leaves_with_paths(shapes["params"]), jax.tree.leaves(params_sharding))}

    def follow(path: str, leaf):
        parts = path.split("/")
        for start in range(len(parts)):  # longest parameter path first
            found = by_path.get("/".join(parts[start:]))
            if found is not None and found[0] == leaf.shape:
                return found[1]
        return replicated(mesh)

    opt = param_paths.map_with_path(follow, shapes["opt"])
    others = {key: jax.tree.map(lambda _: replicated(mesh), value)  # step, rng, fault counters (frx.faults)
              for key, value in shapes.items() if key not in ("params", "opt")}
    return {"params": params_sharding, "opt": opt, **others}


def _leaves_with_paths(tree):
    return [(param_paths.path_str(kp), leaf) for kp, leaf in jax.tree_util.tree_leaves_with_path(tree)]


def bytes_per_device(tree) -> int:
    """Bytes one device holds of a tree of arrays or sharded ShapeDtypeStructs (the largest shard)."""
    total = 0
    for leaf in jax.tree.leaves(tree):
        shape = leaf.sharding.shard_shape(leaf.shape) if leaf.sharding is not None else leaf.shape
        total += math.prod(shape) * np.dtype(leaf.dtype).itemsize
    return total


# --------------------------------------------------------------------------------------------------
# Batches and activations


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_spec(mesh) -> P:
    """Leading (batch) axis split over data x fsdp."""
    return P(tuple(a for a in BATCH_AXES if a in mesh.shape))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, batch_spec(mesh))


def process_batch_slice(mesh: Mesh) -> tuple[int, int]:
    """(index, count): this process holds rows [index*B/count, (index+1)*B/count) of every global
    batch. count is the number of processes unless a tensor axis spans processes (they then share rows).
    """
    shards = num_batch_shards(mesh)
    rows = set()
    for index in batch_sharding(mesh).addressable_devices_indices_map((shards,)).values():
        rows.update(range(shards)[index[0]])
    lo, n = min(rows), len(rows)
    if rows != set(range(lo, lo + n)) or lo % n:
        raise ConfigError(
            "this process's devices hold non-contiguous rows of the batch; order the mesh so that each "
            "host's devices are adjacent on the data/fsdp axes"
        )
    return lo // n, shards // n


def put_batch(batch: dict, mesh: Mesh) -> dict:
    """This process's rows of a global batch -> global arrays sharded on the batch axis."""
    sharding = batch_sharding(mesh)
    _, count = process_batch_slice(mesh)
    out = {}
    for k, v in batch.items():
        v = np.asarray(v)
        out[k] = jax.make_array_from_process_local_data(sharding, v, (v.shape[0] * count,) + v.shape[1:])
    return out


def under_mesh(fn, mesh: Mesh):
    """`fn` traced with `mesh` as the context mesh, so its activation constraints take effect."""

    def wrapped(*args, **kwargs):
        with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            return fn(*args, **kwargs)

    return wrapped


# Logical names of activation dimensions -> mesh axes. Activations are split over the batch, and
# over `tensor` where a tensor-parallel layer produces them; everything else is replicated.
_ACTIVATION_AXES = {"batch": BATCH_AXES, "heads": (TENSOR_AXIS,), "mlp": (TENSOR_AXIS,), "classes": (TENSOR_AXIS,)}


def constrain(x: jax.Array, names: tuple[str | None, ...]) -> jax.Array:
    """Pins the layout of an activation inside a jitted function that runs under a mesh
    (`jax.sharding.use_abstract_mesh`); without one it returns `x` unchanged (single device, tests).

    A None name means replicated; a name whose mesh axes are absent (or do not divide the size)
    leaves that dimension to XLA.
    """
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty:
        return x
    sizes = dict(mesh.shape)
    spec = []
    for size, name in zip(x.shape, names):
        axes = tuple(a for a in _ACTIVATION_AXES.get(name, ()) if sizes.get(a, 1) > 1)
        if name is None or (name == "batch" and not axes):
            spec.append(None)
        elif axes and size % math.prod(sizes[a] for a in axes) == 0:
            spec.append(axes)
        else:
            spec.append(P.UNCONSTRAINED)
    return jax.lax.with_sharding_constraint(x, P(*spec))
