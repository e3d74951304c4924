"""Extreme classification: the classification task with a softmax head for 100K-1M classes.

The records, the device-side preparation (mixup mixes the loss over sparse labels) and the recipe
are classification's (frx.tasks.classification); what this task adds is chosen by the `head`
config section (frx.config.head, docs/extreme.md):

    head.kind       dense     the model's own logits, as classification computes them
                    chunked   features x head kernel in chunks of classes (frx.heads.chunked)
                    sharded   the head's classes split over mesh.tensor, or over every device with
                              mesh.rules=classes (Partial FC; frx.heads.sharded)
                    sampled   sampled softmax with log-Q correction, training only (frx.heads.sampled)
    head.objective  flat      -log p(class), mixup's two classes weighted a and 1 - a
                    taxonomic sum over ranks r of w_r * -log p(node_r), p(node) the summed
                              probability of the classes under it (ranks a sample lacks get 0)

Every head computes the same full softmax except `sampled`; evaluation always uses the full softmax
(chunked, or sharded for a sharded head) and reports top-1/top-5 and loss per class, plus top-1/top-5
per taxonomic rank by marginalisation when the data has a taxonomy (frx.evals.extreme).

Why a task of its own rather than options of `classification`: its loss reads the head's features
and weights instead of logits, its records may carry per-rank class ranges (`ranks`), and its
evaluator scores ranks without gathering logits; keeping it apart leaves classification's numerics
(pinned in tests/tasks/test_classification.py) and evaluator untouched. With `head.kind dense` and
the flat objective on an unpadded head it computes exactly classification's loss.

Padding: `model.num_classes` is the head's width; `head.num_classes` (when set) the data's classes,
the columns beyond them masked. The unigram sampler's class counts come from the training source
when the loop checks the sources (`check_sources`), the only data a loss reads.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from frx import evals, heads, losses, sharding
from frx.config import ConfigError, TrainConfig
from frx.config.head import RANKS
from frx.data import label_index
from frx.data.device_ops import shard_neighbours
from frx.data.pp import Pipeline, make_pipeline
from frx.data.schema import Field, Schema
from frx.heads import chunked, samplers
from frx.heads import targets as targets_lib
from frx.heads.sampled import sampled_softmax_xent
from frx.sharding import batch_shards_in_context
from frx.tasks.base import EvalContext
from frx.tasks.classification import Classification

F32 = jnp.float32
EVALUATORS = ("extreme",)


@dataclasses.dataclass(frozen=True)
class ExtremeClassification:
    cfg: TrainConfig
    train_pp: Pipeline
    eval_pp: Pipeline
    data: dict = dataclasses.field(default_factory=dict)
    """What the loss takes from the training data: the unigram sampler's table (check_sources)."""
    name: str = "extreme"

    # ------------------------------------------------------------------------------------------
    # Sizes and record layout

    @property
    def num_classes(self) -> int:
        """Classes of the data (the valid columns of the head)."""
        return self.cfg.head.num_classes or self.cfg.model.num_classes

    @property
    def head_width(self) -> int:
        return self.cfg.model.num_classes

    @property
    def taxonomic(self) -> bool:
        return self.cfg.head.objective == "taxonomic"

    @property
    def class_axes(self) -> tuple[str, ...]:
        """Mesh axes a sharded head splits its classes over: every axis under mesh.rules=classes
        (Partial FC: features gathered, trunk data parallel), else tensor (as the parameters are laid out)."""
        return sharding.MESH_AXES if self.cfg.mesh.rules == "classes" else (sharding.TENSOR_AXIS,)

    def layout(self, chunk: int | None = None) -> chunked.Layout:
        size = self.cfg.head.chunk_size if chunk is None else chunk
        return chunked.Layout(self.head_width, size, self.num_classes)

    def record_schema(self, source=None) -> Schema:
        size = self.cfg.model.image_size
        schema = {"image": Field((size, size, 3), "uint8"), "label": Field((), "int32", high=self.num_classes)}
        has_ranks = self.taxonomic if source is None else getattr(source, "label_index", None) is not None
        if has_ranks:
            schema["ranks"] = Field((len(RANKS), 2), "int32", high=self.num_classes)
        return schema

    def check_sources(self, sources: dict) -> None:
        train = sources["train"]
        if train.num_classes != self.num_classes:
            fix = (f"--head.num_classes {train.num_classes}" if self.cfg.head.num_classes
                   else f"--model.num_classes {train.num_classes}")
            raise ConfigError(f"the training data has {train.num_classes:,} classes but the head has "
                              f"{self.num_classes:,}; set {fix}")
        if self.taxonomic and getattr(train, "label_index", None) is None:
            raise ConfigError("head.objective=taxonomic needs data with a taxonomy (data.source taxa or tol)")
        head = self.cfg.head
        if head.kind == "sampled" and head.sampler == "unigram":
            counts = label_index.class_counts(train, self.num_classes)
            self.data["unigram"] = samplers.unigram_table(counts, head.distortion)

    # ------------------------------------------------------------------------------------------
    # Training

    def prepare(self, batch: dict, rng: jax.Array) -> dict:
        prepared = Classification(self.cfg, self.train_pp, self.eval_pp).prepare(batch, rng)
        if "mix_weight" in prepared and "ranks" in prepared:
            prepared["partner_ranks"] = shard_neighbours(prepared["ranks"], batch_shards_in_context())
        return prepared

    def head_inputs(self, model, images_BHWC):
        """(features x [B, D] float32 with the head's input multiplier applied, kernel [D, C], bias [C])."""
        x = model.features(images_BHWC)["pre_logits"].astype(F32)
        if model.head.input_multiplier != 1.0:  # muP's readout multiplier (frx.models.layers.Dense)
            x = x * jnp.asarray(model.head.input_multiplier, F32)
        return x, model.head.kernel[...], model.head.bias[...]

    def targets(self, batch: dict) -> targets_lib.Targets:
        """The class ranges the loss asks for, with their weights (frx.heads.targets)."""
        mixed = "mix_weight" in batch
        a = batch["mix_weight"] if mixed else None
        if self.taxonomic:
            weights = self.cfg.head.rank_weights
            own = targets_lib.of_ranks(batch["ranks"], batch["label"], weights, a)
            if not mixed:
                return own
            return targets_lib.concat(own, targets_lib.of_ranks(batch["partner_ranks"], batch["partner_label"],
                                                                weights, 1.0 - a))
        if not mixed:
            return targets_lib.of_labels(batch["label"])
        return targets_lib.of_labels(jnp.stack([batch["label"], batch["partner_label"]], -1), jnp.stack([a, 1 - a], -1))

    def loss(self, model, batch: dict, rng: jax.Array) -> tuple[jax.Array, dict]:
        head = self.cfg.head
        if head.kind == "sampled":
            return self._sampled_loss(model, batch, rng), {}
        targets = self.targets(batch)
        if head.kind == "dense":
            logits = model(batch["image"])
            if not self.taxonomic and self.num_classes == self.head_width:  # classification's exact numerics
                return jnp.mean(losses.softmax_xent_sparse(logits, targets.lo_BT, targets.weight_BT)), {}
            lse = chunked.logits_lse(logits, targets.lo_BT, targets.hi_BT, self.num_classes, targets.kinds)
        else:
            x, kernel, bias = self.head_inputs(model, batch["image"])
            lse = heads.log_sum_exps(head.kind, x, kernel, bias, targets.lo_BT, targets.hi_BT, layout=self.layout(),
                                     kinds=targets.kinds, class_axes=self.class_axes)
        terms = targets_lib.losses_of(lse, targets)
        return jnp.mean(jnp.sum(terms, axis=-1)), self._rank_metrics(terms, targets)

    def _rank_metrics(self, terms_BT, targets) -> dict:
        """train/loss_RANK: the mean -log p(node) over the samples that have that rank (the terms are
        w_r * known * a * -log p, so dividing by the summed w_r * known * a leaves the mean)."""
        if not self.taxonomic:
            return {}
        rows = terms_BT.shape[0]
        per_rank = terms_BT.reshape(rows, -1, len(RANKS)).sum(axis=(0, 1))              # mixup: both parts
        share = targets.weight_BT.reshape(rows, -1, len(RANKS)).sum(axis=(0, 1))
        return {f"loss_{rank}": per_rank[r] / jnp.maximum(share[r], 1e-9)
                for r, rank in enumerate(RANKS) if self.cfg.head.rank_weights[r] > 0}

    def _sampled_loss(self, model, batch, rng):
        head = self.cfg.head
        table = self.data.get("unigram")
        if head.sampler == "unigram" and table is None:
            raise ConfigError("the unigram sampler's class counts come from the training data, which frx aot does "
                              "not read; use --head.sampler log_uniform for the memory estimate (same shapes)")
        x, kernel, bias = self.head_inputs(model, batch["image"])
        if "mix_weight" in batch:
            a = batch["mix_weight"]
            labels, weights = jnp.stack([batch["label"], batch["partner_label"]], -1), jnp.stack([a, 1 - a], -1)
        else:
            labels, weights = batch["label"][:, None], jnp.ones(batch["label"].shape + (1,), F32)
        per_example = sampled_softmax_xent(
            x, kernel, bias, labels.astype(jnp.int32), weights, rng, sampler=head.sampler, num_sampled=head.num_sampled,
            num_classes=self.num_classes, table=None if table is None else tuple(map(jnp.asarray, table)),
            subtract_log_q=head.subtract_log_q, remove_accidental_hits=head.remove_accidental_hits)
        return jnp.mean(per_example)

    # ------------------------------------------------------------------------------------------
    # Evaluation and reporting

    def evaluators(self, context: EvalContext) -> list:
        return [e for name in EVALUATORS for e in evals.get(name).make(self, context)]

    def describe(self) -> str:
        head = self.cfg.head
        how = {"dense": "dense softmax", "chunked": f"chunked softmax ({head.chunk_size:,} classes per chunk)",
               "sharded": f"softmax with classes sharded over {'x'.join(self.class_axes)}",
               "sampled": f"sampled softmax ({head.num_sampled:,} {head.sampler} negatives)"}[head.kind]
        padding = f" (head width {self.head_width:,})" if self.head_width != self.num_classes else ""
        objective = ", taxonomic loss over 7 ranks" if self.taxonomic else ""
        mixup = f", mixup {self.cfg.data.mixup_p:g}" if self.cfg.data.mixup_p else ""
        return f"extreme classification into {self.num_classes:,} classes{padding}, {how}{objective}{mixup}"

    def summary(self, results: dict[str, float]) -> str:
        parts = [f"{k.split('/')[1]} {k.split('/')[2].replace('_', ' ')} {v:.2%}" for k, v in results.items()
                 if k.endswith("acc")]
        return ", ".join(parts) + f" (chance per class {1 / self.num_classes:.4%})"


def check(cfg: TrainConfig) -> None:
    """Combinations the head refuses before anything is built (one line each)."""
    head, model = cfg.head, cfg.model
    if head.num_classes > model.num_classes:
        raise ConfigError(f"head.num_classes {head.num_classes:,} exceeds the head's width model.num_classes "
                          f"{model.num_classes:,}; the width must be at least the data's classes")
    if head.kind == "sampled" and head.objective == "taxonomic":
        raise ConfigError("head.objective=taxonomic needs the full softmax; use --head.kind chunked, sharded or dense")
    if head.kind == "sharded":
        if cfg.mesh.rules in ("dp", "fsdp"):
            raise ConfigError(f"head.kind=sharded splits classes over mesh.tensor (rules tensor) or every device "
                              f"(rules classes), which mesh.rules={cfg.mesh.rules} does not; use --mesh.rules classes")
        sizes = (cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.tensor)
        tensor = math.prod(sizes) if cfg.mesh.rules == "classes" and -1 not in sizes else cfg.mesh.tensor
        if tensor > 1 and model.num_classes % tensor:
            padded = -(-model.num_classes // tensor) * tensor
            valid = head.num_classes or model.num_classes
            raise ConfigError(f"head.kind=sharded splits model.num_classes={model.num_classes:,} over {tensor} "
                              f"devices: pad the head with --model.num_classes {padded} --head.num_classes {valid} "
                              "(the extra columns are masked)")


def make(cfg: TrainConfig) -> ExtremeClassification:
    check(cfg)
    return ExtremeClassification(cfg, make_pipeline(cfg.data.pp_train), make_pipeline(cfg.data.pp_eval))
