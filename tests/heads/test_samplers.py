"""Candidate samplers: TensorFlow's probabilities, draws that follow them, and expected counts."""

import jax
import numpy as np
import pytest

from frx.config import ConfigError
from frx.heads import samplers


def test_log_uniform_probabilities_are_tensorflows_formula_and_sum_to_one():
    p = samplers.probabilities("log_uniform", 1000)
    k = np.arange(1000)
    np.testing.assert_allclose(p, (np.log(k + 2) - np.log(k + 1)) / np.log(1001))  # TF's docstring
    assert p.sum() == pytest.approx(1.0) and np.all(np.diff(p) < 0)


def test_unigram_probabilities_follow_counts_raised_to_the_distortion():
    counts = np.array([8, 0, 2, 1], np.float64)
    np.testing.assert_allclose(samplers.probabilities("unigram", 4, counts, 0.5),
                               np.sqrt(counts) / np.sqrt(counts).sum())
    np.testing.assert_allclose(samplers.probabilities("unigram", 4, counts, 0.0), [0.25] * 4)  # 0**0 = 1
    with pytest.raises(ConfigError, match="needs 5 class counts, got 4"):
        samplers.probabilities("unigram", 5, counts)


@pytest.mark.parametrize("name", ["uniform", "log_uniform", "unigram"])
def test_draws_follow_the_probabilities_and_report_expected_counts(name):
    classes, draws = 40, 200_000
    counts = np.random.default_rng(0).integers(0, 50, classes).astype(np.float64)
    counts[7] = 0
    table = samplers.unigram_table(counts, 0.75) if name == "unigram" else None
    ids, expected = jax.jit(samplers.sample, static_argnums=(0, 2, 3))(name, jax.random.PRNGKey(0), draws, classes,
                                                                        table)
    p = samplers.probabilities(name, classes, counts, 0.75)
    frequency = np.bincount(np.asarray(ids), minlength=classes) / draws
    assert np.all(np.abs(frequency - p) <= 4 * np.sqrt(p * (1 - p) / draws) + 1e-9)  # 4 standard errors
    np.testing.assert_allclose(expected, draws * p[np.asarray(ids)], rtol=1e-5)
    if name == "unigram":
        assert frequency[7] == 0  # a class that never occurs is never drawn


def test_the_all_sampler_gives_every_class_once():
    ids, expected = samplers.sample("all", jax.random.PRNGKey(0), 7, 7)
    assert np.asarray(ids).tolist() == list(range(7)) and np.all(np.asarray(expected) == 1)
