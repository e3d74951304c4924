"""BioCLIP's name cleaning (the cases of bioclip src/imageomics/test_naming.py) and the ToL text members."""

import pytest

from frx.data import taxon_names as names


def test_html_is_stripped_innermost_first():
    assert names.strip_html("Zygodon <i>viridissimus</i> viridissimus") == "Zygodon viridissimus viridissimus"
    assert names.strip_html("<i>Zygodon <i>viridissimus</i></i> viridissimus") == "Zygodon viridissimus viridissimus"


@pytest.mark.parametrize("raw, clean", [
    ("Gigartina papillata", "gigartina papillata"),
    ("Ostrea", "ostrea"),
    ("Atrypanius cinerascens (Bates 1864)", "atrypanius cinerascens"),
    ("Xymene huttoni (Murdoch, 1900)", "xymene huttoni"),
    ("Huperzia dacrydioides (Baker) Pic.Serm.", "huperzia dacrydioides"),
    ("Lagophylla ramosissima ssp. ramosissima", "lagophylla ramosissima"),
    ("Lagocheirus araneiformis subsp. parvulus Casey 1913", "lagocheirus araneiformis"),
    ("Megacyllene asteca Chevrolat 1860", "megacyllene asteca"),
    ("Partula subangulata Pease, 1870", "partula subangulata"),
    ("Echinocereus rigidissimus var. rubrispinus", "echinocereus rigidissimus"),
    ("Collotheca orchidacea Meksuwan, Pholpunthin & Segers, 2013", "collotheca orchidacea"),
    ("Agosia yarrowi Jordan & Evermann", "agosia yarrowi"),
    ("Pellaea boivinii <br > var. boivinii", "pellaea boivinii"),
    ("Stylidium spinulosum r.br.", "stylidium spinulosum"),
])
def test_species_names_lose_authors_years_and_infraspecific_parts(raw, clean):
    assert names.clean_species(raw) == clean


@pytest.mark.parametrize("species, genus, epithet", [
    ("Morinda citrifolia L.", "Morinda", "citrifolia"),
    ("Stylidium spinulosum r.br.", "Stylidium", "spinulosum"),
    ("Drosera aliciae r.hamet", "Drosera", "aliciae"),
    ("geospiza fuliginosa fuliginosa", "Geospiza", "fuliginosa"),
    # bioclip's test_naming.py also expects three repeated words to collapse, but its Taxon only
    # collapses two; frx follows the code that wrote the data.
    ("geospiza fuliginosa fuliginosa fuliginosa", "Geospiza", "fuliginosa fuliginosa fuliginosa"),
])
def test_a_species_without_genus_gives_the_genus_its_first_word(species, genus, epithet):
    assert names.normalize(species=species) == ("", "", "", "", "", genus, epithet)


def test_normalize_aliases_kingdoms_drops_placeholders_and_the_repeated_genus():
    path = names.normalize("Metazoa", "<i>Chordata</i>", "unknown", "PASSERIFORMES", "corvidae", "Corvus",
                           "Corvus corax Linnaeus, 1758")
    assert path == ("Animalia", "Chordata", "", "Passeriformes", "Corvidae", "Corvus", "corax")
    assert names.normalize("Chloroplastida")[0] == names.normalize("archaeplastida")[0] == "Plantae"


def test_shard_members_are_read_tagged_caption_first():
    tagged = "a photo of kingdom Animalia phylum Chordata class Aves order Passeriformes family Corvidae genus Corvus species corax."
    path = ("Animalia", "Chordata", "Aves", "Passeriformes", "Corvidae", "Corvus", "corax")
    assert names.parse_tagged(tagged) == path
    assert names.parse_taxonomic("Animalia Chordata Aves Passeriformes Corvidae Corvus corax") == path
    assert names.parse_scientific("Corvus corax") == ("",) * 5 + ("Corvus", "corax")
    # A missing middle rank: the tagged caption keeps it missing, the taxonomic name cannot.
    gap = "a photo of kingdom Animalia phylum Chordata order Passeriformes family Corvidae genus Corvus species corax."
    assert names.parse_tagged(gap) == ("Animalia", "Chordata", "", "Passeriformes", "Corvidae", "Corvus", "corax")
    family_only = "Animalia Arthropoda Insecta Diptera Cecidomyiidae"
    assert names.parse_taxonomic(family_only) == ("Animalia", "Arthropoda", "Insecta", "Diptera", "Cecidomyiidae", "", "")
    members = {"taxonomic_name.txt": family_only, "taxonTag.txt": gap, "common_name.txt": "raven"}
    assert names.path_of_members(members)[2] == ""  # the tagged caption wins
    assert names.path_of_members({"common_name.txt": "raven"}) is None
