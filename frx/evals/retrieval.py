"""Image-to-text and text-to-image retrieval recall@K over a split of image-caption pairs (the
metrics open_clip and CLIP_benchmark report on COCO and Flickr30k).

For each image, its own caption's rank among all captions of the split by cosine similarity; recall@K
is the fraction of images whose caption ranks within the top K (i2t), and the same for captions
against images (t2i). A rank counts the candidates that score strictly higher, so ties (identical
captions) count in the image's favour. One caption per image: sets with several captions per image
(COCO's 5) need a source that lists each pair.
"""

from __future__ import annotations

import numpy as np

from frx.evals import embeddings

KS = (1, 5, 10)
_ROWS_PER_CHUNK = 2048  # bounds the (chunk, N) similarity block on the host


def ranks(queries_ND: np.ndarray, candidates_ND: np.ndarray) -> np.ndarray:
    """For each query i, how many candidates score strictly higher than candidate i (0 = first)."""
    out = np.empty(len(queries_ND), np.int64)
    for start in range(0, len(queries_ND), _ROWS_PER_CHUNK):
        rows = np.arange(start, min(start + _ROWS_PER_CHUNK, len(queries_ND)))
        scores = queries_ND[rows] @ candidates_ND.T
        own = scores[np.arange(len(rows)), rows]
        out[rows] = np.sum(scores > own[:, None], axis=1)
    return out


def recalls(zimg_ND: np.ndarray, ztxt_ND: np.ndarray, ks=KS) -> dict[str, float]:
    """{"i2t_r1": ..., "t2i_r10": ...} for aligned pairs (row i of both is one image and its caption)."""
    out = {}
    for direction, query, candidates in (("i2t", zimg_ND, ztxt_ND), ("t2i", ztxt_ND, zimg_ND)):
        r = ranks(query, candidates)
        out.update({f"{direction}_r{k}": float(np.mean(r < k)) for k in ks})
    return out


class RetrievalEvaluator:
    """`run(params)` -> {"eval/SPLIT/i2t_r1", ..., "eval/SPLIT/t2i_r10"}; nothing for an empty split."""

    def __init__(self, name: str, source, pp, record_schema, *, graphdef, batch_size: int, mesh, threads: int = 2):
        self.name, self.source, self.pp, self.record_schema = name, source, pp, record_schema
        self.kw = dict(graphdef=graphdef, batch_size=batch_size, mesh=mesh, threads=threads)

    def run(self, params) -> dict[str, float]:
        out = embeddings.collect(params, self.source, self.pp, self.record_schema,
                                 outputs=("image_embeddings", "text_embeddings"), **self.kw)
        if not len(out["image_embeddings"]):
            return {}
        return {f"eval/{self.name}/{k}": v for k, v in recalls(out["image_embeddings"], out["text_embeddings"]).items()}


def make(task, context) -> list[RetrievalEvaluator]:
    """One evaluator per configured split (`eval.splits`) whose records are image-caption pairs."""
    return [
        RetrievalEvaluator(split, context.sources[split], task.eval_pp, task.record_schema(context.sources[split]),
                           graphdef=context.graphdef, batch_size=context.batch_size, mesh=context.mesh,
                           threads=context.threads)
        for split in task.cfg.eval.splits
        if split in context.sources and "tokens" in task.record_schema(context.sources[split])
    ]
