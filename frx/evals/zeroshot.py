"""Zero-shot classification by prompts (open_clip `build_zero_shot_classifier` and `zero_shot.py`;
CLIP's recipe): every class name goes into every template, the prompts are embedded and
L2-normalised, averaged over the templates per class and normalised again; an image's class is the
one whose averaged embedding is closest. Reports top-1 and (with more than 5 classes) top-5.
"""

from __future__ import annotations

import numpy as np

from frx.data.pp import Pipeline
from frx.data.schema import Field
from frx.evals import embeddings

TOP_K = 5


def classifier(text_embeddings_PD: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, D) class embeddings from (C * T, D) normalised prompt embeddings, class-major: the mean over
    each class's T templates, re-normalised."""
    per_class = text_embeddings_PD.reshape(num_classes, -1, text_embeddings_PD.shape[-1]).mean(axis=1)
    return per_class / np.linalg.norm(per_class, axis=-1, keepdims=True)


def accuracies(zimg_ND: np.ndarray, labels_N: np.ndarray, classes_CD: np.ndarray) -> dict[str, float]:
    """{"zeroshot_top1": ..., "zeroshot_top5": ...} of cosine-similarity classification."""
    scores = zimg_ND @ classes_CD.T
    out = {"zeroshot_top1": float(np.mean(np.argmax(scores, axis=1) == labels_N))}
    if classes_CD.shape[0] > TOP_K:
        top = np.argpartition(-scores, TOP_K, axis=1)[:, :TOP_K]
        out["zeroshot_top5"] = float(np.mean(np.any(top == labels_N[:, None], axis=1)))
    return out


class ZeroShotEvaluator:
    """`run(params)` -> {"eval/SPLIT/zeroshot_top1", "eval/SPLIT/zeroshot_top5"} on a labelled split."""

    def __init__(self, name: str, source, *, classnames, templates, image_pp: Pipeline, text_pp: Pipeline,
                 image_schema, context_length: int, graphdef, batch_size: int, mesh, threads: int = 2):
        self.name, self.source, self.image_pp, self.text_pp = name, source, image_pp, text_pp
        self.classnames, self.templates, self.image_schema = tuple(classnames), tuple(templates), image_schema
        # prompts carry their position, since rows come back in the order of the processes' shards
        self.prompts = [{"text": t.format(c), "index": i}
                        for i, (c, t) in enumerate((c, t) for c in self.classnames for t in self.templates)]
        self.text_schema = {"tokens": Field((context_length,), "int32"), "index": Field((), "int32")}
        self.kw = dict(graphdef=graphdef, batch_size=batch_size, mesh=mesh, threads=threads)

    def class_embeddings(self, params) -> np.ndarray:
        out = embeddings.collect(params, self.prompts, self.text_pp, self.text_schema, outputs=("text_embeddings",),
                                 keep=("index",), **self.kw)
        ordered = out["text_embeddings"][np.argsort(out["index"])]
        return classifier(ordered, len(self.classnames))

    def run(self, params) -> dict[str, float]:
        out = embeddings.collect(params, self.source, self.image_pp, self.image_schema, outputs=("image_embeddings",),
                                 keep=("label",), **self.kw)
        if not len(out["image_embeddings"]):
            return {}
        scores = accuracies(out["image_embeddings"], out["label"], self.class_embeddings(params))
        return {f"eval/{self.name}/{k}": v for k, v in scores.items()}


def make(task, context) -> list[ZeroShotEvaluator]:
    """One evaluator per labelled split the task offers (`task.zeroshot_sources(context)`: name ->
    (source, class names, templates))."""
    return [
        ZeroShotEvaluator(name, source, classnames=names, templates=templates, image_pp=task.eval_pp,
                          text_pp=task.text_pp, image_schema=task.record_schema(source),
                          context_length=task.context_length, graphdef=context.graphdef,
                          batch_size=context.batch_size, mesh=context.mesh, threads=context.threads)
        for name, (source, names, templates) in task.zeroshot_sources(context).items()
    ]
