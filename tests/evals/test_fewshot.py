"""big_vision's few-shot ridge regression: the eigen-decomposition form equals the direct solve of the
regularised normal equations in both of its branches; shots are drawn per class as big_vision draws them."""

import numpy as np
import pytest

from frx.evals import fewshot


def _direct(x_train, y_train, x_test, num_classes, l2):
    """W = (X^T X + l2 I)^-1 X^T Y on whitened features with the bias column, in float64."""
    x = np.asarray(x_train, np.float64)
    mean, std = x.mean(0, keepdims=True), x.std(0, keepdims=True) + 1e-5
    feats = lambda a: np.pad((np.asarray(a, np.float64) - mean) / std, ((0, 0), (0, 1)), constant_values=100.0)  # noqa: E731
    X, Y = feats(x), 2 * np.eye(num_classes)[y_train] - 1
    w = np.linalg.solve(X.T @ X + l2 * np.eye(X.shape[1]), X.T @ Y)
    return np.argmax(feats(x_test) @ w, axis=1)


@pytest.mark.parametrize("n, dim", [(200, 12), (30, 64)], ids=["N>=D", "D>N"])
def test_the_eigendecomposition_solves_the_ridge_regression(n, dim):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, dim)) * 2
    y_train, y_test = rng.integers(0, 5, n), rng.integers(0, 5, 400)
    x_train = centres[y_train] + rng.normal(size=(n, dim))
    x_test = centres[y_test] + rng.normal(size=(400, dim))
    expected = np.mean(_direct(x_train, y_train, x_test, 5, 1024.0) == y_test)
    assert fewshot.ridge_accuracy(x_train, y_train, x_test, y_test, 5, 1024.0) == pytest.approx(expected, abs=1 / 400)
    assert expected > 0.5  # the features separate the classes: the comparison is not between two chance levels


def test_shots_are_the_first_k_of_each_class_after_a_seeded_permutation():
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    picked = fewshot.shot_indices(labels, 3, 2, seed=1)
    rng = np.random.default_rng(1)
    expected = np.concatenate([rng.permutation(np.where(labels == c)[0])[:2] for c in range(3)])
    assert picked.tolist() == expected.tolist() and sorted(labels[picked].tolist()) == [0, 0, 1, 1, 2, 2]
