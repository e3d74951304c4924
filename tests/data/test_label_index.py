"""The class index of a taxonomy: sorted taxa make every node a contiguous class range; missing names,
hemihomonyms and unseen validation taxa; stored once in the run folder."""

import numpy as np
import pytest

from frx.config import ConfigError
from frx.data import label_index
from frx.data.label_index import LabelIndex
from frx.data.splits import Subset

CORVUS = ("Animalia", "Chordata", "Aves", "Passeriformes", "Corvidae", "Corvus", "corax")
PICA = ("Animalia", "Chordata", "Aves", "Passeriformes", "Corvidae", "Pica", "pica")
FAMILY_ONLY = ("Animalia", "Arthropoda", "Insecta", "Diptera", "Cecidomyiidae", "", "")
GALL_MIDGE = ("Animalia", "Arthropoda", "Insecta", "Diptera", "Cecidomyiidae", "Aphidoletes", "aphidimyza")
NO_CLASS = ("Animalia", "Chordata", "", "Squamata", "Boidae", "Boa", "constrictor")
PLANT_ORIA = ("Plantae", "Tracheophyta", "Magnoliopsida", "Fabales", "Fabaceae", "Oria", "x")  # a hemihomonym
ANIMAL_ORIA = ("Animalia", "Arthropoda", "Insecta", "Lepidoptera", "Noctuidae", "Oria", "musculosa")
SAMPLES = [CORVUS, PICA, CORVUS, FAMILY_ONLY, GALL_MIDGE, NO_CLASS, PLANT_ORIA, ANIMAL_ORIA, CORVUS]


def test_classes_are_sorted_taxa_and_every_node_is_a_contiguous_range():
    index = LabelIndex.from_paths(SAMPLES)
    assert index.paths == sorted(set(SAMPLES)) and index.num_classes == 7
    assert index.counts[index.class_of(CORVUS)] == 3 and index.counts.sum() == len(SAMPLES)
    for c, path in enumerate(index.paths):
        for r in range(7):
            first, end = index.class_ranges[c, r]
            if not path[r]:
                assert (first, end) == (0, 0)
                continue
            members = [i for i, p in enumerate(index.paths) if p[: r + 1] == path[: r + 1]]
            assert list(range(first, end)) == members  # contiguous, and exactly the node's classes
            assert len(set(index.node_ids[r, members])) == 1
    corvidae = index.class_ranges[index.class_of(CORVUS), 4]
    assert corvidae[1] - corvidae[0] == 2  # Corvus and Pica
    corvus = index.class_of(CORVUS)
    assert index.class_ranges[corvus, 6].tolist() == [corvus, corvus + 1]  # a species is its class


def test_a_node_is_its_path_so_homonyms_under_other_parents_differ():
    index = LabelIndex.from_paths(SAMPLES)
    genus = index.node_ids[5]
    assert genus[index.class_of(PLANT_ORIA)] != genus[index.class_of(ANIMAL_ORIA)]
    # The family-only taxon sits under a placeholder genus of its own family.
    assert genus[index.class_of(FAMILY_ONLY)] != genus[index.class_of(GALL_MIDGE)]
    assert index.node_ids[4, index.class_of(FAMILY_ONLY)] == index.node_ids[4, index.class_of(GALL_MIDGE)]
    assert index.num_nodes[0] == 2 and index.num_nodes[6] == 7


def test_an_unseen_taxon_is_scored_at_the_ranks_the_index_knows():
    index = LabelIndex.from_paths(SAMPLES)
    unseen = CORVUS[:5] + ("Garrulus", "glandarius")
    assert index.class_of(unseen) == -1
    ranges = index.ranges_of_path(unseen)
    np.testing.assert_array_equal(ranges[:5], index.class_ranges[index.class_of(CORVUS), :5])
    assert ranges[5:].tolist() == [[0, 0], [0, 0]]


def test_node_maps_pad_a_wider_head_with_the_last_node():
    index = LabelIndex.from_paths(SAMPLES)
    maps = index.node_maps(10)
    assert maps.shape == (7, 10) and np.all(np.diff(maps, axis=1) >= 0) and np.all(maps[:, 7:] == maps[:, 6:7])


def test_the_index_is_stored_once_and_reused(tmp_path):
    built = label_index.stored_or_built(str(tmp_path), lambda: LabelIndex.from_paths(SAMPLES))
    assert (tmp_path / label_index.FILE_NAME).exists()
    again = label_index.stored_or_built(str(tmp_path), lambda: pytest.fail("must not rebuild"))
    assert again.paths == built.paths and again.counts.tolist() == built.counts.tolist()
    (tmp_path / label_index.FILE_NAME).write_text('{"format": "other"}')
    with pytest.raises(ConfigError, match="not an frx label index"):
        LabelIndex.load(str(tmp_path))


def test_class_counts_of_a_split_count_only_its_records():
    class Source:
        labels = np.array([0, 1, 1, 2, 2, 2])

    assert label_index.class_counts(Source(), 4).tolist() == [1, 2, 3, 0]
    assert label_index.class_counts(Subset(Source(), [1, 3, 5], "train"), 3).tolist() == [0, 1, 2]
    with pytest.raises(ConfigError, match="does not list its labels"):
        label_index.class_counts(object(), 3)
