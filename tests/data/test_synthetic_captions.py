"""The embedded captioned set: held-out combinations never reach training (though each of their words
does), captions describe the drawn image, records are pure functions of (seed, split, index)."""

import numpy as np

from frx.config import SyntheticConfig
from frx.data import synthetic_captions as sc
from frx.data.synthetic import COLOURS, SHAPES, TEXTURES

CFG = SyntheticConfig(train_size=300, val_size=96, num_shapes=4, num_colours=4, num_textures=3, holdout=6)


def _words(caption: str) -> set[str]:
    return set(caption.replace(",", "").split())


def test_held_out_combinations_are_never_trained_on_but_their_attributes_are():
    sources = sc.synthetic_caption_sources(CFG, 16)
    held = [c for c in sc.combinations(CFG) if sc.is_held_out(CFG, c)]
    assert len(held) == 7 and sorted(sources) == ["heldout", "seen", "train", "val"]  # (s + c + t) % 6 == 0
    train = sources["train"]
    assert set(train.combos).isdisjoint(held) and len(train.combos) == 48 - 7
    for shape, colour, texture in held:  # every word of a held-out class is seen in other combinations
        assert any(c[0] == shape for c in train.combos) and any(c[1] == colour for c in train.combos)
        assert any(c[2] == texture for c in train.combos)
    heldout = sources["heldout"]
    assert {heldout.classnames[label] for label in heldout.labels} == {sc.class_name(c) for c in held}
    assert sources["seen"].classnames == heldout.classnames and len(heldout.classnames) == 48


def test_captions_name_the_colour_texture_and_shape_drawn():
    source = sc.SyntheticCaptionsSource(CFG, "train", 16)
    for index in range(0, 300, 7):
        shape, colour, texture = source.combos[index % len(source.combos)]
        record = source[index]
        words = _words(record["text"])
        assert list(COLOURS)[colour] in words
        assert words & set(sc.TEXTURE_WORDS[TEXTURES[texture]])
        assert any(set(w.split()) <= words for w in sc.SHAPE_WORDS[SHAPES[shape]])
        assert record["image"].shape == (16, 16, 3) and record["image"].dtype == np.uint8


def test_records_are_pure_functions_of_seed_split_and_index():
    a, b = sc.SyntheticCaptionsSource(CFG, "val", 16), sc.SyntheticCaptionsSource(CFG, "val", 16)
    for index in (0, 5, 95):
        first, again = a[index], b[index]
        assert first["text"] == again["text"] and np.array_equal(first["image"], again["image"])
        assert a[index]["text"] == first["text"]  # from the cache: the same
    other = sc.SyntheticCaptionsSource(SyntheticConfig(**{**CFG.__dict__, "seed": 1}), "val", 16)
    assert not np.array_equal(other[0]["image"], a[0]["image"])


def test_labelled_splits_give_class_ids_and_prompt_templates():
    seen = sc.SyntheticCaptionsSource(CFG, "seen", 16)
    record = seen[3]
    assert set(record) == {"image", "label"} and seen.classnames[record["label"]] == sc.class_name(seen.combos[3])
    assert "{}" in seen.templates[0] and sc.SyntheticCaptionsSource(CFG, "train", 16).classnames is None


def test_holding_out_nothing_keeps_every_combination_for_training():
    sources = sc.synthetic_caption_sources(SyntheticConfig(**{**CFG.__dict__, "holdout": 0}), 16)
    assert "heldout" not in sources and len(sources["train"].combos) == 48
