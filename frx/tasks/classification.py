"""Image classification with softmax cross-entropy on sparse class ids (big_vision's ViT recipe).

Records are {"image": uint8 (S, S, 3), "label": int32 class id}; multi-hot evaluation sets (ImageNet-
ReaL) carry a float label row instead. Labels stay sparse from the host to the loss: mixup (big_vision:
one a ~ Beta(p, p) per step, folded to a >= 0.5, each image mixed with its neighbour within the device
shard) mixes the images and then the *loss* over the two sparse labels,
    a * xent(logits, y) + (1 - a) * xent(logits, y_partner),
which equals the cross-entropy against the mixed one-hot rows without ever building them.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from frx import evals, losses, sharding
from frx.config import ConfigError, TrainConfig
from frx.data.device_ops import mix, mixup_weight, shard_neighbours
from frx.data.pp import Pipeline, data_op_defaults, make_pipeline
from frx.data.schema import Field, Schema
from frx.tasks.base import EvalContext

EVALUATORS = ("classification", "fewshot")  # frx.evals modules (classification: each configured split)


@dataclasses.dataclass(frozen=True)
class Classification:
    cfg: TrainConfig
    train_pp: Pipeline
    eval_pp: Pipeline
    name: str = "classification"

    @property
    def num_classes(self) -> int:
        return self.cfg.model.num_classes

    def record_schema(self, source=None) -> Schema:
        size = self.cfg.model.image_size
        label_shape = tuple(getattr(source, "label_shape", ()))  # () or (classes,) for multi-hot sets
        label = Field(label_shape, "float32") if label_shape else Field((), "int32", high=self.num_classes)
        return {"image": Field((size, size, 3), "uint8"), "label": label}

    def check_sources(self, sources: dict) -> None:
        found = sources["train"].num_classes
        if found < 2:
            raise ConfigError(f"the training data has {found} class; classification needs at least 2 (check --data.root)")
        if found != self.num_classes:
            raise ConfigError(f"the training data has {found} classes but model.num_classes is {self.num_classes}; "
                              f"set --model.num_classes {found}")

    def prepare(self, batch: dict, rng: jax.Array) -> dict:
        rng_pp, rng_mix = jax.random.split(rng)
        batch = self.train_pp.device_fn()(batch, rng_pp)
        images = sharding.constrain(batch["image"], ("batch", None, None, None))
        if not self.cfg.data.mixup_p:
            return {**batch, "image": images}
        shards = sharding.batch_shards_in_context()
        a = mixup_weight(rng_mix, self.cfg.data.mixup_p)
        return {**batch, "image": mix(images, a, shards), "partner_label": shard_neighbours(batch["label"], shards),
                "mix_weight": jnp.full(batch["label"].shape, a)}

    def loss(self, model, batch: dict, rng: jax.Array) -> tuple[jax.Array, dict]:
        del rng  # the forward pass is deterministic (no dropout in big_vision's ViT recipe)
        logits = model(batch["image"])
        if "mix_weight" not in batch:
            return jnp.mean(losses.softmax_xent_sparse(logits, batch["label"])), {}
        a = batch["mix_weight"]
        labels = jnp.stack([batch["label"], batch["partner_label"]], axis=-1)
        return jnp.mean(losses.softmax_xent_sparse(logits, labels, jnp.stack([a, 1.0 - a], axis=-1))), {}

    def evaluators(self, context: EvalContext) -> list:
        return [e for name in EVALUATORS for e in evals.get(name).make(self, context)]

    def describe(self) -> str:
        mixup = f", mixup {self.cfg.data.mixup_p:g}" if self.cfg.data.mixup_p else ""
        return f"classification into {self.num_classes:,} classes{mixup}"

    def summary(self, results: dict[str, float]) -> str:
        accuracies = ", ".join(f"{k.split('/')[1]} accuracy {v:.2%}" for k, v in results.items() if k.endswith("/acc"))
        return f"{accuracies} (chance {1 / self.num_classes:.2%})"


def make(cfg: TrainConfig) -> Classification:
    defaults = data_op_defaults(cfg.data)
    return Classification(cfg, make_pipeline(cfg.data.pp_train, defaults), make_pipeline(cfg.data.pp_eval, defaults))
