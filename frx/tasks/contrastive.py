"""Image-text contrastive training: CLIP (softmax) or SigLIP (sigmoid) on a two-tower model.

Records are {"image": uint8 (S, S, 3), "tokens": int32 (L,)}: the `tokenize` host op turns the
caption field into ids (frx.data.tokenizers). The loss (frx.losses) runs on the embeddings of the
whole global batch, split over the devices as `contrastive.loss_impl` says (gather: each device's
rows against all-gathered columns; chunked: SigLIP's ring; dense: the plain formula under GSPMD), so
every example sees every other one of the batch as a negative.

Gradient accumulation is refused: the step averages micro-batch losses, and a micro-batch's contrastive
loss sees only its own negatives, a different (easier) objective than the batch's. Memory for large
batches comes from more devices (the losses above keep per-device memory at O(b B) or O(b^2)) and from
`--model.remat`, not from accumulation. (open_clip's --accum-freq recomputes each micro-batch against
cached features of all of them; that needs two forward passes and is not implemented here.)

Evaluators: retrieval recall@K on captioned splits, zero-shot top-1/top-5 on labelled splits (the
embedded set's "heldout" and "seen", and `contrastive.zeroshot_root`), and few-shot linear probes of
the image features (`fewshot.*`).
"""

from __future__ import annotations

import dataclasses
import os

import jax

from frx import evals, losses, sharding
from frx.config import ConfigError, TrainConfig
from frx.data.op_registry import HOST_OPS
from frx.data.pp import Pipeline, make_pipeline
from frx.data.schema import Field, Schema
from frx.data.tokenizers import TokenizeOp
from frx.tasks.base import EvalContext

EVALUATORS = ("retrieval", "zeroshot", "fewshot")  # frx.evals modules
LOSSES = {
    ("clip", "dense"): losses.clip_loss,
    ("clip", "gather"): losses.clip_loss_gathered,
    ("siglip", "dense"): losses.siglip_loss,
    ("siglip", "gather"): losses.siglip_loss_gathered,
    ("siglip", "chunked"): losses.siglip_loss_chunked,
}


def _tokenize_op(pipeline: Pipeline, field: str) -> tuple[TokenizeOp, Pipeline]:
    """(the pipeline's tokenize op, a pipeline of just its tokenize op(s)); ConfigError without one."""
    calls = tuple(call for call in pipeline.host if call.name == "tokenize")
    if not calls:
        raise ConfigError(f"data.{field} does not tokenize the captions; add tokenize(LENGTH) after decode, e.g. "
                          "'decode|resize(224)|tokenize(64)|value_range(-1,1)'")
    return HOST_OPS["tokenize"](*calls[-1].args, **calls[-1].kwargs), Pipeline(calls, ())


@dataclasses.dataclass(frozen=True)
class Contrastive:
    cfg: TrainConfig
    train_pp: Pipeline
    eval_pp: Pipeline
    text_pp: Pipeline
    """The tokenize op(s) of eval_pp alone: how zero-shot prompts are tokenized."""
    name: str = "contrastive"

    @property
    def context_length(self) -> int:
        return self.cfg.model.text.context_length

    def record_schema(self, source=None) -> Schema:
        model = self.cfg.model
        size = model.image_size
        image = Field((size, size, 3), "uint8")
        if getattr(source, "classnames", None) is not None:  # a labelled set for zero-shot classification
            return {"image": image, "label": Field((), "int32", high=len(source.classnames))}
        return {"image": image, "tokens": Field((self.context_length,), "int32", high=model.text.vocab_size)}

    def check_sources(self, sources: dict) -> None:
        if getattr(sources["train"], "classnames", None) is not None:
            raise ConfigError("the contrastive task trains on image-text pairs; the training split has class labels")

    def prepare(self, batch: dict, rng: jax.Array) -> dict:
        batch = self.train_pp.device_fn()(batch, rng)
        return {**batch, "image": sharding.constrain(batch["image"], ("batch", None, None, None))}

    def loss(self, model, batch: dict, rng: jax.Array) -> tuple[jax.Array, dict]:
        del rng  # deterministic forward pass
        out = model(batch["image"], batch["tokens"])
        c = self.cfg.contrastive
        loss_fn = LOSSES[(c.loss, c.get_loss_impl())]
        extras = {"scale": out["scale"]}
        if c.loss == "siglip":
            loss = loss_fn(out["zimg"], out["ztxt"], out["scale"], out["bias"])
            extras["bias"] = out["bias"]
        else:
            loss = loss_fn(out["zimg"], out["ztxt"], out["scale"])
        return loss, extras

    def zeroshot_sources(self, context: EvalContext) -> dict:
        """name -> (labelled source, class names, templates): the configured splits that carry class
        names (the embedded set's heldout and seen) and `contrastive.zeroshot_root` as "zeroshot"."""
        found = {}
        for split in self.cfg.eval.splits:
            source = context.sources.get(split)
            if getattr(source, "classnames", None) is not None:
                found[split] = (source, source.classnames, source.templates)
        if self.cfg.contrastive.zeroshot_root:
            found["zeroshot"] = _zeroshot_set(self.cfg)
        return found

    def evaluators(self, context: EvalContext) -> list:
        return [e for name in EVALUATORS for e in evals.get(name).make(self, context)]

    def describe(self) -> str:
        c = self.cfg.contrastive
        return f"contrastive image-text training, {c.loss} loss ({c.get_loss_impl()})"

    def summary(self, results: dict[str, float]) -> str:
        parts = []
        for key, value in results.items():
            split, metric = key.split("/")[1:3]
            if metric == "zeroshot_top1":
                parts.append(f"{split} zero-shot top-1 {value:.2%}")
            elif metric in ("i2t_r1", "t2i_r1"):
                parts.append(f"{split} {metric.replace('_r1', '')} R@1 {value:.2%}")
            elif split == "fewshot" and metric == "10shot":
                parts.append(f"10-shot linear {value:.2%}")
        return ", ".join(parts) or "no evaluation results"


def _zeroshot_set(cfg: TrainConfig) -> tuple:
    """The labelled images of `contrastive.zeroshot_root` with their class names and templates."""
    from frx.data import sources as data_sources
    from frx.data import tfds
    from frx.evals import prompts

    c = cfg.contrastive
    root = c.zeroshot_root
    if os.path.isdir(os.path.join(root, "imagenet2012")):
        source = tfds.TfdsSource(tfds.find_dataset_dir(root, "imagenet2012"), "validation")
        folders = None
    else:
        files, labels, folders = data_sources.scan_folder(root)
        source = data_sources.FolderSource(files, labels, folders, root)
    if c.zeroshot_classnames == "imagenet":
        names = prompts.imagenet_classnames()
        if source.num_classes != len(names):
            raise ConfigError(f"{root} has {source.num_classes} classes but the ImageNet names are 1000; use "
                              "--contrastive.zeroshot_classnames folders")
    elif folders is None:
        raise ConfigError("contrastive.zeroshot_classnames=folders needs an image folder, not a TFDS dir")
    else:
        names = tuple(name.replace("_", " ") for name in folders)
    return _Labelled(source, names), names, prompts.templates(c.zeroshot_templates)


class _Labelled:
    """A labelled source marked with its class names (what makes the task give it the label schema)."""

    def __init__(self, source, classnames):
        self.source, self.classnames = source, tuple(classnames)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict:
        return self.source[index]

    def __repr__(self) -> str:
        return f"Labelled({self.source!r})"


def _check_tokenizer(cfg: TrainConfig, op: TokenizeOp, field: str) -> None:
    text = cfg.model.text
    if op.length != text.context_length:
        raise ConfigError(f"data.{field} tokenizes to {op.length} tokens but model.text.context_length is "
                          f"{text.context_length}; make them equal")
    if op.tokenizer.vocab_size > text.vocab_size:
        raise ConfigError(f"the tokenizer has {op.tokenizer.vocab_size} ids but model.text.vocab_size is "
                          f"{text.vocab_size}; set --model.text.vocab_size {op.tokenizer.vocab_size}")
    if text.pool == "eos":
        probe = op.tokenizer.encode("a photo of a cat.", op.length)
        if text.eos_id not in probe.tolist():
            raise ConfigError(f"model.text.pool=eos looks for token {text.eos_id}, but the tokenizer puts no such id "
                              f"in 'a photo of a cat.' ({probe.tolist()[:12]}...); set --model.text.eos_id to its "
                              "end-of-text id, or use --model.text.pool last")


def make(cfg: TrainConfig) -> Contrastive:
    if cfg.grad_accum != 1:
        raise ConfigError(f"grad_accum {cfg.grad_accum} would give each micro-batch only its own negatives (another "
                          "loss than the batch's); contrastive training refuses it: use more devices, a smaller "
                          "--batch_size or --model.remat")
    train_pp, eval_pp = make_pipeline(cfg.data.pp_train), make_pipeline(cfg.data.pp_eval)
    train_op, _ = _tokenize_op(train_pp, "pp_train")
    eval_op, text_pp = _tokenize_op(eval_pp, "pp_eval")
    _check_tokenizer(cfg, train_op, "pp_train")
    _check_tokenizer(cfg, eval_op, "pp_eval")
    return Contrastive(cfg, train_pp, eval_pp, text_pp)
