"""TreeOfLife-10M-style shards as BioCLIP's make_wds.py writes them: taxa from the text members or from
catalog.csv, cleaned; the class index and the shard index stored in the run folder and reused;
unseen validation taxa scored at the ranks the index knows."""

import csv
import dataclasses
import os

import numpy as np
import pytest

from frx.config import ConfigError, DataConfig
from frx.data import label_index
from frx.data.decode import decode_image
from frx.data.sources import make_sources
from frx.data.tree_of_life import scan
from tests.support.data_fixtures import encode_image, labelled_pixels, write_tar_shard

RAVEN = ("Animalia", "Chordata", "Aves", "Passeriformes", "Corvidae", "Corvus", "corax")
MAGPIE = ("Animalia", "Chordata", "Aves", "Passeriformes", "Corvidae", "Pica", "pica")
MIDGE = ("Animalia", "Arthropoda", "Insecta", "Diptera", "Cecidomyiidae", "", "")  # BIOSCAN-like, family only
OAK = ("Plantae", "Tracheophyta", "Magnoliopsida", "Fagales", "Fagaceae", "Quercus", "robur")
TAGS = ("kingdom", "phylum", "class", "order", "family", "genus", "species")


def _members(taxon, index, *, raw_species=None):
    """The members make_wds.py's make_txt writes for one sample (names as naming.Taxon renders them)."""
    species = raw_species or taxon[6]
    scientific = " ".join(n for n in (taxon[5], taxon[6]) if n).capitalize()
    taxonomic = " ".join(n for n in taxon if n)
    tagged = " ".join(f"{t} {n}" for t, n in zip(TAGS, taxon[:6] + (species,)) if n)
    common = scientific or taxonomic
    return {"jpg": encode_image(labelled_pixels(index % 20, index)),
            "scientific_name.txt": scientific.encode(), "taxonomic_name.txt": taxonomic.encode(),
            "common_name.txt": common.encode(), "sci.txt": f"a photo of {scientific}.".encode(),
            "com.txt": f"a photo of {common}.".encode(), "taxon.txt": f"a photo of {taxonomic}.".encode(),
            "taxonTag.txt": f"a photo of {tagged}.".encode(), "sci_com.txt": b"a photo of x with common name y.",
            "taxon_com.txt": b"a photo of x with common name y.", "taxonTag_com.txt": b"a photo of x with common name y."}


def _write_shards(folder, taxa, start=0, per_shard=4):
    os.makedirs(folder, exist_ok=True)
    samples = [(f"{start + i:08x}-uuid", _members(t, start + i)) for i, t in enumerate(taxa)]
    for s in range(0, len(samples), per_shard):
        write_tar_shard(os.path.join(folder, f"shard-{s // per_shard:06d}.tar"), samples[s : s + per_shard])
    return f"{folder}/shard-{{000000..{(len(samples) - 1) // per_shard:06d}}}.tar"


TRAIN = [RAVEN, MAGPIE, RAVEN, MIDGE, OAK, RAVEN, MIDGE, MAGPIE] * 4


def test_a_tol_run_reads_taxa_from_the_shards_and_stores_its_class_index(tmp_path):
    train = _write_shards(tmp_path / "train", TRAIN)
    val = _write_shards(tmp_path / "val", [OAK, RAVEN[:5] + ("Garrulus", "glandarius")], start=1000)
    cfg = DataConfig(source="tol", root=train, val_root=val, minival_fraction=0.25)
    workdir = tmp_path / "run"
    sources = make_sources(cfg, 224, workdir=str(workdir))
    index = sources["train"].label_index
    assert index.paths == sorted({RAVEN, MAGPIE, MIDGE, OAK})
    assert [index.counts[index.class_of(t)] for t in (RAVEN, MAGPIE, MIDGE, OAK)] == [12, 8, 8, 4]
    assert len(sources["train"]) + len(sources["minival"]) == len(TRAIN)
    record = sources["train"][0]
    assert decode_image(record["image"]).shape == (24, 32, 3)
    assert index.paths[record["label"]] in TRAIN
    np.testing.assert_array_equal(record["ranks"], index.class_ranges[record["label"]])
    unseen = sources["val"][1]  # a genus the training data lacks: known down to the family
    assert unseen["label"] == -1 and unseen["ranks"][4].tolist() == list(index.class_ranges[index.class_of(RAVEN), 4])
    assert unseen["ranks"][5:].tolist() == [[0, 0], [0, 0]]
    assert {label_index.FILE_NAME, "tol_index_train.npz", "tol_index_val.npz"} <= set(os.listdir(workdir))

    # A restart reads the stored index and the cached shard index (same ids, no tar read).
    import frx.data.tree_of_life as tol

    original = tol.scan
    tol.scan = lambda *a, **k: pytest.fail("the cached shard index must be reused")
    try:
        again = make_sources(cfg, 224, workdir=str(workdir))
    finally:
        tol.scan = original
    assert again["train"].labels.tolist() == sources["train"].labels.tolist()


def test_the_catalog_gives_the_taxa_and_its_names_are_cleaned(tmp_path):
    train = _write_shards(tmp_path / "train", [RAVEN] * 4)
    catalog = tmp_path / "catalog.csv"
    columns = ["split", "treeoflife_id", "eol_content_id", "eol_page_id", "bioscan_part", "bioscan_filename",
               "inat21_filename", "inat21_cls_name", "inat21_cls_num", "kingdom", "phylum", "class", "order",
               "family", "genus", "species", "common"]
    with open(catalog, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for i, taxon in enumerate([OAK, MAGPIE, ("Metazoa",) + MIDGE[1:], RAVEN]):
            species = "Corvus corax Linnaeus, 1758" if taxon == RAVEN else taxon[6]
            writer.writerow(["train", f"{i:08x}-uuid"] + [""] * 7 + list(taxon[:6]) + [species, ""])
    sources = make_sources(DataConfig(source="tol", root=train, catalog=str(catalog), minival_fraction=0), 224)
    taxa = [sources["train"].label_index.paths[c] for c in sources["train"].labels]
    assert taxa == [OAK, MAGPIE, MIDGE, RAVEN]  # the catalog, not the shards' own names


def test_samples_without_a_taxon_are_left_out_and_a_changed_dataset_is_refused(tmp_path):
    folder = tmp_path / "train"
    os.makedirs(folder)
    write_tar_shard(folder / "shard-000000.tar", [("a", _members(RAVEN, 0)), ("b", {"jpg": _members(OAK, 1)["jpg"]})])
    found = scan([str(folder / "shard-000000.tar")], None)
    assert found["keys"].tolist() == ["a"] and found["skipped"] == 1
    cfg = DataConfig(source="tol", root=str(folder / "shard-000000.tar"), minival_fraction=0)
    make_sources(cfg, 224, workdir=str(tmp_path / "run"))
    write_tar_shard(folder / "shard-000000.tar", [("a", _members(OAK, 0))])  # the data changed under the run
    with pytest.raises(ConfigError, match="taxa that the run folder's label_index.json lacks"):
        make_sources(dataclasses.replace(cfg), 224, workdir=str(tmp_path / "run"))
