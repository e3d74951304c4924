"""Taxon names as BioCLIP cleans them, and the text members of TreeOfLife-10M shards they come from.

Cleaning (the rules of bioclip `src/imageomics/naming.py`, class `Taxon`; its tests are mirrored in
tests/data/test_taxon_names.py):
1. every rank: HTML tags removed (innermost first: `<i>x</i>` -> x), lower-cased, and the
   placeholders "(unidentified)", "unknown", "pleasehelp" become empty;
2. the species is cut at the first of: "(", "ssp.", "subsp.", "var.", "name, name & name",
   "name & name", "name yyyy", "name, yyyy", "yyyy", " X." (an author's initial), "<br>", in that
   order, each pattern cutting what the previous ones left;
3. kingdoms Metazoa -> Animalia, Archaeplastida and Chloroplastida -> Plantae;
4. a species that starts with its genus loses it ("corvus corax" under Corvus -> "corax"); with no
   genus, a two-word species gives the genus its first word;
5. a species of two equal words becomes one ("fuliginosa fuliginosa" -> "fuliginosa");
6. step 1 again. Ranks kingdom ... genus are then capitalised, the species epithet stays lower case
   (`Taxon.to_tuple`), which is also what catalog.csv holds.

Shard members (bioclip `scripts/evobio10m/make_wds.py`, `make_txt`): per sample `KEY.jpg` and text
members `KEY.taxonomic_name.txt` ("Animalia Chordata Aves Passeriformes Corvidae Corvus corax"),
`KEY.scientific_name.txt` ("Corvus corax"), `KEY.common_name.txt`, and captions such as
`KEY.taxonTag.txt` ("a photo of kingdom Animalia phylum Chordata ... species corax."). The tagged
caption names every rank and is read first. The taxonomic name drops missing ranks without a trace,
so it is read by position (capitalised words fill kingdom, phylum, ... in order, lower-case words are
the species): a name missing a middle rank (Animalia Chordata _ Passeriformes ...) shifts the ranks
below it, which is why catalog.csv (explicit columns) is preferred when available.
"""

from __future__ import annotations

import re

from frx.config.head import RANKS

UNKNOWN = ("(unidentified)", "unknown", "pleasehelp")
KINGDOM_ALIASES = {"metazoa": "animalia", "archaeplastida": "plantae", "chloroplastida": "plantae"}
# bioclip naming.py clean_name: each pattern, in this order, cuts the name at its first match.
SPECIES_CUTS = tuple(re.compile(p) for p in (
    r"\(", r"ssp\.", r"subsp\.", r"var\.", r"\w+, \w+ & \w+", r"\w+ & \w+", r"\w+ \d\d\d\d", r"\w+, \d\d\d\d",
    r"\d\d\d\d", r" [A-z]\.", r"<br ?>",
))
TAGGED_PREFIX = "a photo of "
_RANK_WORDS = {"kingdom": 0, "phylum": 1, "class": 2, "order": 3, "family": 4, "genus": 5, "species": 6}


def strip_html(text: str) -> str:
    """`<i>Zygodon <i>viridissimus</i></i>` -> `Zygodon viridissimus` (paired tags, innermost first)."""
    while True:
        stripped = re.sub(r"<.*?>(.*?)</.*?>", r"\1", text)
        if stripped == text:
            return text
        text = stripped


def clean_rank(value: str) -> str:
    value = strip_html(value).lower()
    return "" if value in UNKNOWN else value


def clean_species(name: str) -> str:
    """The species name without authors, years, infraspecific parts or markup (lower case)."""
    name = strip_html(name.lower()).strip()
    for pattern in SPECIES_CUTS:
        match = pattern.search(name)
        if match:
            name = name[: match.start()].strip()
    return name


def normalize(kingdom="", phylum="", cls="", order="", family="", genus="", species="") -> tuple[str, ...]:
    """The cleaned path (Kingdom, Phylum, Class, Order, Family, Genus, species epithet); "" = missing."""
    ranks = [clean_rank(v or "") for v in (kingdom, phylum, cls, order, family, genus, species)]
    ranks[6] = clean_species(ranks[6])
    ranks[0] = KINGDOM_ALIASES.get(ranks[0], ranks[0])
    genus, species = ranks[5], ranks[6]
    if species:
        first, *rest = species.split()
        if rest and (first == genus or not genus):
            genus, species = first, " ".join(rest)
        words = species.split()
        if len(words) == 2 and words[0] == words[1]:
            species = words[0]
    ranks[5], ranks[6] = genus, species
    ranks = [clean_rank(v) for v in ranks]
    return tuple(v.capitalize() for v in ranks[:6]) + (ranks[6].lower(),)


def parse_tagged(text: str) -> tuple[str, ...]:
    """A `taxonTag.txt` caption ("a photo of kingdom Animalia ... species corax.") -> cleaned path."""
    text = text.strip()
    if text.lower().startswith(TAGGED_PREFIX):
        text = text[len(TAGGED_PREFIX):]
    text = text.removesuffix(".")
    ranks, current = [""] * len(RANKS), None
    for word in text.split():
        if word in _RANK_WORDS and (current is None or _RANK_WORDS[word] > current):
            current = _RANK_WORDS[word]
        elif current is not None:
            ranks[current] = f"{ranks[current]} {word}".strip()
    return normalize(*ranks)


def parse_taxonomic(text: str) -> tuple[str, ...]:
    """A `taxonomic_name.txt` ("Animalia Chordata Aves ... Corvus corax") -> cleaned path, by position
    (see the module docstring for why a missing middle rank cannot be recovered from it)."""
    words = text.strip().split()
    upper = [w for w in words if w[:1].isupper()]
    lower = [w for w in words if not w[:1].isupper()]
    ranks = (upper + [""] * 6)[:6] + [" ".join(lower)]
    return normalize(*ranks)


def parse_scientific(text: str) -> tuple[str, ...]:
    """A `scientific_name.txt` ("Corvus corax") -> a path with only genus and species."""
    return normalize(species=text.strip())


# Text members of a ToL shard sample that name its taxon, most informative first.
MEMBER_PARSERS = (("taxonTag.txt", parse_tagged), ("taxonomic_name.txt", parse_taxonomic),
                  ("scientific_name.txt", parse_scientific))


def path_of_members(texts: dict[str, str]) -> tuple[str, ...] | None:
    """The taxon path of a sample from the first text member it has (None when it has none)."""
    for member, parse in MEMBER_PARSERS:
        if member in texts and texts[member].strip():
            return parse(texts[member])
    return None
