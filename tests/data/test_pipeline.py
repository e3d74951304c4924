"""Grain pipelines: the training stream is a function of (seed, position) whatever the threads, workers
and processes; bad records are replaced deterministically and resumably; evaluation passes are padded;
records are projected onto the task's schema."""

import gc

import numpy as np
import pytest

from frx.config import SyntheticConfig
from frx.data import decode, pipeline
from frx.data.pp import make_pipeline
from frx.data.synthetic import SyntheticSource
from frx.data.tfds import TfdsSource
from frx.errors import DataError
from tests.support.bad_images import KINDS, expected_stream, make_files
from tests.support.data_fixtures import class_label_feature, encode_image, image_schema, write_tfds_dataset


def _stream(threads, process_index=0, process_count=1, steps=4):
    src = SyntheticSource(SyntheticConfig(train_size=40), "train", 16)
    pp = make_pipeline("decode|random_resized_crop(16, 0.3)|flip_lr")
    ds = pipeline.make_train_dataset(src, pp, image_schema(16), batch_size=8, seed=5, process_index=process_index,
                                     process_count=process_count)
    it = pipeline.make_train_iterator(ds, threads=threads, workers=0)
    return [next(it) for _ in range(steps)], it


def test_training_stream_does_not_depend_on_threads_or_processes():
    one, _ = _stream(threads=1)
    four, _ = _stream(threads=4)
    halves = [_stream(threads=1, process_index=p, process_count=2)[0] for p in range(2)]
    for s in range(4):
        np.testing.assert_array_equal(one[s]["image"], four[s]["image"])
        joined = np.concatenate([halves[0][s]["image"], halves[1][s]["image"]])
        np.testing.assert_array_equal(one[s]["image"], joined)
    # 4 batches of 8 from 40 images: no repeats within the first epoch.
    assert len({bytes(img) for b in one for img in b["image"]}) == 32


def test_iterator_state_restores_the_exact_position():
    batches, it = _stream(threads=2, steps=3)
    state = it.get_state()
    expected = next(it)
    _, fresh = _stream(threads=2, steps=0)
    fresh.set_state(state)
    np.testing.assert_array_equal(next(fresh)["image"], expected["image"])


def test_eval_batches_pad_with_masked_examples_and_cover_each_image_once():
    src = SyntheticSource(SyntheticConfig(val_size=21), "val", 16)
    pp = make_pipeline("decode")
    batches = list(pipeline.eval_batches(src, pp, image_schema(16), batch_size=8))
    assert len(batches) == 3 and sum(int(b["mask"].sum()) for b in batches) == 21
    assert not batches[-1]["image"][~batches[-1]["mask"]].any()
    per_process = [list(pipeline.eval_batches(src, pp, image_schema(16), batch_size=8, process_index=p,
                                              process_count=2)) for p in range(2)]
    assert len(per_process[0]) == len(per_process[1])
    labels = [lab for p in per_process for b in p for lab, m in zip(b["label"], b["mask"]) if m]
    assert sorted(labels) == sorted(src[i]["label"] for i in range(21))


def _tfds_train(tmp_path, photo, n=40):
    records = [{"image": encode_image(photo[5 * i : 5 * i + 300, 3 * i : 3 * i + 260]), "label": i % 4}
               for i in range(n)]
    features = {"image": {}, "label": class_label_feature(4)}
    return write_tfds_dataset(tmp_path, "imagenet2012", "5.1.0", {"train": records}, features, shards=3)


def _first_batches(source, workers: int, threads: int, count: int = 4):
    pp = make_pipeline("decode|inception_crop(24)|flip_lr")
    ds = pipeline.make_train_dataset(source, pp, image_schema(24), batch_size=8, seed=3)
    it = pipeline.make_train_iterator(ds, threads=threads, workers=workers)
    batches = [next(it) for _ in range(count)]
    if hasattr(it, "close"):
        it.close()
    del it
    gc.collect()
    return batches


def test_worker_processes_and_threads_do_not_change_the_stream(tmp_path, photo):
    source = TfdsSource(_tfds_train(tmp_path, photo), "train")
    reference = _first_batches(source, workers=0, threads=1)
    for workers, threads in ((0, 4), (2, 1)):
        for expected, got in zip(reference, _first_batches(source, workers=workers, threads=threads)):
            np.testing.assert_array_equal(expected["image"], got["image"])
            np.testing.assert_array_equal(expected["label"], got["label"])


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


def test_bad_records_are_replaced_by_the_next_good_one_deterministically():
    names = sorted(KINDS)
    pp = make_pipeline("decode|resize(8)")
    ds = pipeline.make_train_dataset(_source(names), pp, image_schema(8), batch_size=4, seed=5)
    rows = [row for b in range(8) for row in zip(ds[b]["label"], ds[b]["skipped"], ds[b]["converted"])]
    expected = expected_stream(names, seed=5, length=32)
    code = lambda table, kind: 0 if kind is None else table.index(kind) + 1  # noqa: E731
    assert [tuple(map(int, r)) for r in rows] == [
        (label, code(decode.SKIP_REASONS, skip), code(decode.CONVERSIONS, conv)) for label, skip, conv in expected
    ]
    assert sum(int(s > 0) for _, s, _ in rows) == 2 * sum(o == "skipped" for o, _ in KINDS.values())


def test_stream_with_bad_records_resumes_exactly_from_its_iterator_state():
    pp = make_pipeline("decode|resize(8)|flip_lr")
    ds = pipeline.make_train_dataset(_source(sorted(KINDS)), pp, image_schema(8), batch_size=4, seed=1)
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
                                     image_schema(20),
                                     batch_size=2, seed=0)
    with pytest.raises(DataError, match=r"none of 50 consecutive training records .* could be decoded"):
        ds[0]


def test_records_of_mixed_sizes_without_a_resize_stop_with_one_line_naming_the_fix():
    images = [np.zeros((16, 16, 3), np.uint8)] * 3 + [np.zeros((20, 16, 3), np.uint8)]
    source = _ListSource([{"image": image, "label": 0} for image in images])
    ds = pipeline.make_train_dataset(source, make_pipeline("decode"), image_schema(16), batch_size=4, seed=0)
    with pytest.raises(DataError, match="training record at stream position \\d: the host ops produced 'image' of "
                                        "shape 20x16x3 but the task expects 16x16x3; end the host ops with a crop/resize"):
        ds[0]
