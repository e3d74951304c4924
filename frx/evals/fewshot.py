"""Few-shot linear evaluation of frozen image features (big_vision `evaluators/fewshot_lsr.py`), for any
frx image model: a classifier's head input or a two-tower's image-tower head input ("pre_logits",
`model.features(images)`).

For each seed s and each shot count k: each class's training indices are permuted with
np.random.default_rng(s) and the first k taken; a ridge regression from the features to targets
2 * one_hot - 1 is solved in closed form and scored by top-1 accuracy on the whole test set:
  1. whiten with the k-shot set's mean and std (+ 1e-5),
  2. append a constant feature 100 (the bias, so it is barely regularised),
  3. with N >= D: eigh(X^T X) = Q diag(e) Q^T and W = Q diag(1 / (e + l2)) Q^T X^T Y;
     with D > N: eigh(X X^T) and W = X^T Q diag(1 / (e + l2)) Q^T Y,
in float32, as big_vision does on the host CPU. Reported: eval/fewshot/Kshot, the mean over seeds
(big_vision logs each seed). Features are computed once per evaluation, only for the images drawn.
"""

from __future__ import annotations

import numpy as np

from frx.config import ConfigError, TrainConfig
from frx.data import pipeline
from frx.data.pp import make_pipeline
from frx.data.schema import Field
from frx.data.splits import Subset
from frx.evals import embeddings

BIAS_CONSTANT = 100.0


def ridge_accuracy(x_train, y_train, x_test, y_test, num_classes: int, l2_reg: float) -> float:
    """Top-1 accuracy on (x_test, y_test) of big_vision's closed-form ridge regression fit on (x_train, y_train)."""
    x, x_test = np.asarray(x_train, np.float32), np.asarray(x_test, np.float32)
    mean = x.mean(axis=0, keepdims=True)
    std = x.std(axis=0, keepdims=True) + np.float32(1e-5)
    x = np.pad((x - mean) / std, ((0, 0), (0, 1)), constant_values=BIAS_CONSTANT)
    x_test = np.pad((x_test - mean) / std, ((0, 0), (0, 1)), constant_values=BIAS_CONSTANT)
    y = 2.0 * np.eye(num_classes, dtype=np.float32)[np.asarray(y_train)] - 1.0
    if x.shape[0] >= x.shape[1]:
        eigs, q = np.linalg.eigh(x.T @ x)
        lhs, rhs = q, q.T @ (x.T @ y)
    else:
        eigs, q = np.linalg.eigh(x @ x.T)
        lhs, rhs = x.T @ q, q.T @ y
    w = (lhs * (1.0 / (eigs + np.float32(l2_reg)))[None, :]) @ rhs
    return float(np.mean(np.argmax(x_test @ w, axis=1) == np.asarray(y_test)))


def shot_indices(labels: np.ndarray, num_classes: int, shots: int, seed: int) -> np.ndarray:
    """The first `shots` indices of each class after a per-class permutation by default_rng(seed)."""
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.where(labels == c)[0]) for c in range(num_classes)]
    return np.concatenate([indices[:shots] for indices in per_class])


def make_sources(cfg: TrainConfig, image_size: int) -> tuple:
    """(train source, test source, number of classes) of `cfg.fewshot`."""
    from frx.data import sources as data_sources
    from frx.data.synthetic import SyntheticSource

    few = cfg.fewshot
    if few.source == "synthetic":
        synthetic = cfg.data.synthetic
        train, test = SyntheticSource(synthetic, "train", image_size), SyntheticSource(synthetic, "val", image_size)
    elif few.source == "digits":
        found = data_sources.digits_sources()
        train, test = found["train"], found["val"]
    else:
        files, labels, classes = data_sources.scan_folder(few.root)
        train = data_sources.FolderSource(files, labels, classes, few.root)
        test = data_sources.FolderSource(*data_sources.scan_folder(few.test_root, classes), few.test_root)
    if len(test) == 0:
        raise ConfigError(f"fewshot.source={few.source} has no test images")
    return train, test, train.num_classes


class FewshotEvaluator:
    """`run(params)` -> {"eval/fewshot/1shot": ..., "eval/fewshot/25shot": ...}."""

    name = "fewshot"

    def __init__(self, cfg: TrainConfig, image_size: int, *, graphdef, batch_size: int, mesh, threads: int = 2):
        self.cfg = cfg.fewshot
        self.train, self.test, self.num_classes = make_sources(cfg, image_size)
        self.pp = make_pipeline(self.cfg.pp)
        self.schema = {"image": Field((image_size, image_size, 3), "uint8"), "label": Field((), "int32")}
        try:
            pipeline.check_host_output(self.test, self.pp, self.schema, "pp")
        except ConfigError as e:  # name the field where it lives
            raise ConfigError(str(e).replace("data.pp", "fewshot.pp")) from None
        self.labels = np.asarray(self.train.labels)
        self.draws = {(seed, k): shot_indices(self.labels, self.num_classes, k, seed)
                      for seed in range(self.cfg.seeds) for k in self.cfg.shots}
        self.kw = dict(graphdef=graphdef, batch_size=batch_size, mesh=mesh, threads=threads)

    def _features(self, params, source):
        out = embeddings.collect(params, source, self.pp, self.schema, outputs=("features",), keep=("label",),
                                 **self.kw)
        return out["features"], out["label"]

    def run(self, params) -> dict[str, float]:
        drawn = np.unique(np.concatenate(list(self.draws.values())))
        # The shot images carry their index as the label so that rows can be matched after the pass.
        subset = _WithIndex(Subset(self.train, drawn.tolist(), "fewshot:train"), drawn)
        features, index = self._features(params, subset)
        if len(index) != len(drawn):
            raise ConfigError("a few-shot training image could not be decoded; pick another fewshot.root")
        by_index = dict(zip(index.tolist(), range(len(index))))
        test_x, test_y = self._features(params, self.test)
        results = {}
        for k in self.cfg.shots:
            accuracies = []
            for seed in range(self.cfg.seeds):
                rows = [by_index[i] for i in self.draws[(seed, k)].tolist()]
                accuracies.append(ridge_accuracy(features[rows], self.labels[self.draws[(seed, k)]], test_x, test_y,
                                                 self.num_classes, self.cfg.l2_reg))
            results[f"eval/fewshot/{k}shot"] = float(np.mean(accuracies))
        return results


class _WithIndex:
    """A subset whose records carry their index in the full source as "label"."""

    def __init__(self, subset, indices):
        self.subset, self.indices = subset, indices

    def __len__(self) -> int:
        return len(self.subset)

    def __getitem__(self, i: int) -> dict:
        return {**self.subset[i], "label": int(self.indices[i])}


def make(task, context) -> list[FewshotEvaluator]:
    """The few-shot evaluator when `fewshot.source` is set, at the task's image size."""
    if task.cfg.fewshot.source == "none":
        return []
    image_size = task.record_schema()["image"].shape[0]
    return [FewshotEvaluator(task.cfg, image_size, graphdef=context.graphdef, batch_size=context.batch_size,
                             mesh=context.mesh, threads=context.threads)]
