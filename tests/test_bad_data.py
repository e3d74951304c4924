"""Bad data: every kind of broken or unusual image file is converted or skipped, counted and
reported; the stream stays deterministic and resumable; nothing crashes or hangs."""

import dataclasses
import io

import grain
import numpy as np
import pytest
from PIL import Image

from frx import tracking
from frx.config import DataConfig, EvalConfig
from frx.data import decode, pipeline
from frx.data.ops import make_pipeline
from frx.errors import DataError
from frx.train import train
from tests.bad_images import KINDS, make_files, png_raw, write_folder
from tests.conftest import tiny_config


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_kind_of_file_is_converted_or_skipped_with_its_reason(name):
    outcome, detail = KINDS[name]
    data = make_files()[name]
    if outcome == "skipped":
        with pytest.raises(decode.BadImage) as info:
            decode.decode_image(data)
        assert info.value.reason == detail and "\n" not in str(info.value)
        return
    with decode.conversions() as seen:
        image = decode.decode_image(data)
    assert image.dtype == np.uint8 and image.shape == (20, 20, 3)
    assert seen == ([] if outcome == "ok" else [detail])


def test_conversions_keep_the_pixels():
    files = make_files(seed=3)
    rgb = np.asarray(Image.open(io.BytesIO(files["rgb.png"])))
    np.testing.assert_array_equal(decode.decode_image(files["png_named.jpg"]), rgb)
    np.testing.assert_array_equal(decode.decode_image(files["rgba.png"]), rgb)  # alpha dropped, colour kept
    np.testing.assert_array_equal(decode.decode_image(files["grey.png"]), np.repeat(rgb[..., :1], 3, axis=-1))
    # 16-bit greyscale: the high byte of each sample, not Pillow's saturated convert("RGB").
    grey16 = np.asarray(Image.open(io.BytesIO(files["grey16.png"]))).astype(np.int64)
    np.testing.assert_array_equal(decode.decode_image(files["grey16.png"])[..., 1], grey16 >> 8)
    pillow = np.asarray(Image.open(io.BytesIO(files["grey16.png"])).convert("RGB"))
    np.testing.assert_array_equal(pillow[..., 0], np.minimum(grey16, 255))  # what a naive decode would train on
    # 16-bit RGB written by hand: the high byte of every channel.
    samples = np.array([[[0x1234, 0xABCD, 0xFF00]]], np.uint16)
    png = png_raw(1, 1, 16, 2, b"\0" + samples.astype(">u2").tobytes())
    np.testing.assert_array_equal(decode.decode_image(png), [[[0x12, 0xAB, 0xFF]]])
    # CMYK -> RGB through Pillow's conversion (JPEG loses a little).
    assert np.abs(decode.decode_image(files["cmyk.jpg"]).astype(int) - rgb.astype(int)).mean() < 12


def test_decompression_bombs_are_refused_from_the_header():
    bomb = png_raw(100_000, 100_000, 8, 0, b"\0" * 10)  # 10^10 pixels: Pillow's own bomb error
    with pytest.raises(decode.BadImage, match="too_large"):
        decode.decode_image(bomb)
    small = make_files()["rgb.png"]  # 400 pixels
    with pytest.raises(decode.BadImage, match="20x20 pixels exceed max_pixels=399"):
        decode.decode_image(small, max_pixels=399)
    host = make_pipeline("decode(max_pixels=399)").host_fn()
    with pytest.raises(decode.BadImage):
        host(small, np.random.default_rng(0))


class _ListSource:
    def __init__(self, records):
        self.records = records

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        return self.records[i]

    def __repr__(self):
        return f"_ListSource(n={len(self)})"


def _source(names):
    files = make_files()
    return _ListSource([{"image": files[n], "label": i} for i, n in enumerate(names)])


def _expected_stream(names, seed, length):
    """Independent re-derivation: position g holds the first good record at or after g of Grain's
    shuffled, repeated order; it reports record g's skip reason and the used record's conversion."""
    order = grain.MapDataset.range(len(names)).shuffle(seed=seed).repeat(None)
    rows = []
    for g in range(length):
        k = g
        while KINDS[names[order[k]]][0] == "skipped":
            k += 1
        outcome, detail = KINDS[names[order[g]]]
        used_outcome, used_detail = KINDS[names[order[k]]]
        rows.append((order[k], detail if outcome == "skipped" else None,
                     used_detail if used_outcome == "converted" else None))
    return rows


def test_bad_records_are_replaced_by_the_next_good_one_deterministically():
    names = sorted(KINDS)
    pp = make_pipeline("decode|resize(8)")
    ds = pipeline.make_train_dataset(_source(names), pp, batch_size=4, seed=5)
    rows = [row for b in range(8) for row in zip(ds[b]["label"], ds[b]["skipped"], ds[b]["converted"])]
    expected = _expected_stream(names, seed=5, length=32)
    code = lambda table, kind: 0 if kind is None else table.index(kind) + 1  # noqa: E731
    assert [tuple(map(int, r)) for r in rows] == [
        (label, code(decode.SKIP_REASONS, skip), code(decode.CONVERSIONS, conv)) for label, skip, conv in expected
    ]
    assert sum(int(s > 0) for _, s, _ in rows) == 2 * sum(o == "skipped" for o, _ in KINDS.values())


def test_stream_with_bad_records_resumes_exactly_from_its_iterator_state():
    pp = make_pipeline("decode|resize(8)|flip_lr")
    ds = pipeline.make_train_dataset(_source(sorted(KINDS)), pp, batch_size=4, seed=1)
    it = pipeline.make_train_iterator(ds, threads=2, workers=0)
    for _ in range(3):
        next(it)
    state = it.get_state()
    rest = [next(it) for _ in range(5)]
    again = pipeline.make_train_iterator(ds, threads=1, workers=0)
    again.set_state(state)
    for a, b in zip(rest, [next(again) for _ in range(5)]):
        for key in ("image", "label", "skipped", "converted"):
            np.testing.assert_array_equal(a[key], b[key])


def test_a_source_with_no_decodable_image_stops_with_an_error_instead_of_hanging(monkeypatch):
    monkeypatch.setattr(pipeline, "MAX_CONSECUTIVE_BAD", 50)
    ds = pipeline.make_train_dataset(_source(["garbage.jpg", "empty.jpg", "huge.png"]), make_pipeline("decode"),
                                     batch_size=2, seed=0)
    with pytest.raises(DataError, match=r"none of 50 consecutive training records .* could be decoded"):
        ds[0]


def test_a_folder_of_every_kind_trains_through_with_the_right_counts(tmp_path):
    """A dozen-plus kinds x 2 classes; exactly one epoch, so every bad record is met once."""
    counts = write_folder(tmp_path / "images")
    n = sum(counts.values())  # 32 files
    cfg = tiny_config(tmp_path / "run", batch_size=8, total_steps=n // 8)
    cfg = dataclasses.replace(
        cfg,
        model=dataclasses.replace(cfg.model, num_classes=2),
        data=DataConfig(source="folder", root=str(tmp_path / "images"), val_root=str(tmp_path / "images"),
                        minival_fraction=0.0, pp_train="decode|resize(16)|flip_lr|value_range(-1,1)",
                        pp_eval="decode|resize(16)|value_range(-1,1)", threads=1),
        eval=EvalConfig(every_steps=0, at_start=False, splits=("val",)),
        ckpt=dataclasses.replace(cfg.ckpt, every_steps=0),
    )
    results = train(cfg)
    last = [r for r in tracking.read_metrics(str(tmp_path / "run")) if "train/loss" in r][-1]
    assert last["step"] == n // 8 and np.isfinite(last["train/loss"])
    for reason in decode.SKIP_REASONS:
        assert last.get(f"data/skipped/{reason}", 0) == counts.get(f"skipped/{reason}", 0), reason
    assert last["data/skipped"] == sum(v for k, v in counts.items() if k.startswith("skipped/")) == 12
    # Converted rows: each converted file at its own position, plus rows that a bad record handed
    # to a converted successor (derived independently from Grain's shuffle of the sorted file list).
    names = [name for _ in range(2) for name in sorted(KINDS)]  # file order: class a, then class b
    expected = _expected_stream(names, seed=cfg.seed, length=n)
    for kind in decode.CONVERSIONS:
        assert last.get(f"data/converted/{kind}", 0) == sum(conv == kind for _, _, conv in expected), kind
    # Evaluation leaves the 12 unusable files out of accuracy and says so.
    assert results["eval/val/skipped"] == 12
