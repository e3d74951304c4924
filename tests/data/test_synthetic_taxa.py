"""The embedded taxonomy set: a known 7-rank tree with Zipf class frequencies, family-only labels, and
images whose appearance follows the path through the tree."""

import numpy as np

from frx.config import TaxaConfig
from frx.data import synthetic_taxa
from frx.data.synthetic_taxa import TaxaSource

SMALL = TaxaConfig(branching=(2, 2, 2, 2, 2, 3, 4), train_size=3000, val_size=200, zipf_exponent=1.0,
                   missing_fraction=0.2)


def test_classes_are_the_species_plus_one_family_only_taxon_per_family():
    source = TaxaSource(SMALL, "train", 16)
    index = source.label_index
    assert index.num_classes == 2**5 * 3 * 4 + 2**5 and source.num_classes == index.num_classes
    assert index.num_nodes == (2, 4, 8, 16, 32, 32 * 3 + 32, index.num_classes)
    family_only = [c for c, p in enumerate(index.paths) if not p[6]]
    assert len(family_only) == 32 and all(not index.paths[c][5] for c in family_only)
    record = source[0]
    assert record["image"].shape == (16, 16, 3) and record["image"].dtype == np.uint8
    np.testing.assert_array_equal(record["ranks"], index.class_ranges[record["label"]])


def test_labels_follow_the_zipf_law_and_the_missing_fraction():
    species, missing = synthetic_taxa.draw_labels(SMALL, "train")
    frequency = np.sort(np.bincount(species, minlength=SMALL.num_species))[::-1] / len(species)
    harmonic = (1.0 / np.arange(1, SMALL.num_species + 1)).sum()
    expected = 1.0 / (np.arange(1, 4) * harmonic)
    assert np.all(np.abs(frequency[:3] - expected) < 4 * np.sqrt(expected / len(species)))
    assert abs(missing.mean() - 0.2) < 0.03
    source = TaxaSource(SMALL, "train", 16)
    assert source.label_index.counts.sum() == SMALL.train_size
    assert all(not source.label_index.paths[c][6] for c in source.labels[missing])


def test_an_image_is_a_pure_function_of_seed_split_and_index():
    a, b = TaxaSource(SMALL, "val", 24), TaxaSource(SMALL, "val", 24)
    np.testing.assert_array_equal(a[5]["image"], b[5]["image"])
    assert not np.array_equal(a[5]["image"], TaxaSource(SMALL, "train", 24)[5]["image"])


def test_the_kingdom_is_read_off_the_background_colour():
    """The highest rank is the most salient factor: the nearest base hue of the image's corners
    names the kingdom of nearly every image."""
    source = TaxaSource(TaxaConfig(branching=(4, 2, 2, 2, 2, 2, 2), train_size=200), "train", 32)
    bases = np.array(synthetic_taxa.BACKGROUNDS, np.float32)
    right = 0
    for i in range(len(source)):
        record = source[i]
        corners = record["image"][[0, 0, -1, -1], [0, -1, 0, -1]].astype(np.float32).mean(0)
        hue = corners / corners.sum()
        guess = np.argmin(np.abs(bases / bases.sum(1, keepdims=True) - hue).sum(1))
        right += guess == source.species_digits[i][0]
    assert right / len(source) > 0.9
