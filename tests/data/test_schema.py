"""Batch schemas: records are projected onto the task's fields with one-line errors, and the padding,
random fixtures and abstract batches all come from the same declaration."""

import jax
import numpy as np
import pytest

from frx.data import schema
from frx.data.schema import Field, SchemaError

RECORD = {"image": Field((4, 4, 3), "uint8"), "label": Field((), "int32", high=10)}


def test_records_are_projected_onto_the_schema_and_cast():
    record = {"image": np.ones((4, 4, 3), np.uint8), "label": 3, "file_name": "x.jpg"}
    out = schema.conform(record, RECORD)
    assert set(out) == {"image", "label"} and out["label"].dtype == np.int32 and int(out["label"]) == 3


@pytest.mark.parametrize("record, message", [
    ({"image": np.ones((5, 4, 3), np.uint8), "label": 1}, "produced 'image' of shape 5x4x3 but the task expects 4x4x3; end the host ops with a crop/resize"),
    ({"image": b"\xff\xd8...", "label": 1}, "field 'image' is still encoded bytes after the host ops; start the op string with decode"),
    ({"image": np.ones((4, 4, 3), np.uint8)}, "produced no field 'label'"),
    ({"image": np.ones((4, 4, 3), np.uint8), "label": 2.9}, "field 'label' holds \\[2.9\\] where the task expects int32"),
])
def test_a_record_that_does_not_fit_is_named_in_one_line(record, message):
    with pytest.raises(SchemaError, match=message) as info:
        schema.conform(record, RECORD)
    assert "\n" not in str(info.value)


def test_padding_fixtures_and_abstract_batches_follow_the_declaration():
    fields = schema.with_stream_fields(RECORD, schema.TRAIN_STREAM_FIELDS)
    assert set(fields) == {"image", "label", "skipped", "converted"}
    padding = schema.zeros(RECORD)
    assert padding["image"].shape == (4, 4, 3) and not padding["image"].any() and padding["label"].dtype == np.int32
    batch = schema.random_batch(fields, 32, np.random.default_rng(0))
    assert batch["image"].dtype == np.uint8 and batch["image"].shape == (32, 4, 4, 3)
    assert batch["label"].dtype == np.int32 and 0 <= batch["label"].min() and batch["label"].max() < 10
    assert not batch["skipped"].any() and batch["converted"].dtype == np.int8
    abstract = schema.abstract_batch(fields, 32)
    assert {k: (v.shape, v.dtype) for k, v in abstract.items()} == {k: (v.shape, v.dtype) for k, v in batch.items()}
    assert all(isinstance(v, jax.ShapeDtypeStruct) for v in abstract.values())
