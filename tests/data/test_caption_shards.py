"""Image-text pairs from webdataset tar shards as img2dataset writes them: jpg/png/webp + txt, or a
caption field of the json member; incomplete samples counted; any record readable in any order."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from frx.config import ConfigError
from frx.data.caption_shards import CaptionedTarSource
from frx.data.decode import decode_image
from tests.support.data_fixtures import encode_image, labelled_pixels, write_tar_shard


def _webp(pixels) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="WEBP", lossless=True)
    return buf.getvalue()


def _write(tmp_path):
    meta = lambda caption: json.dumps({"url": "http://x", "caption": caption, "width": 32}).encode()  # noqa: E731
    write_tar_shard(tmp_path / "00000.tar", [
        ("000000000", {"jpg": encode_image(labelled_pixels(0, 0)), "txt": b"a red cat", "json": meta("ignored")}),
        ("000000001", {"png": encode_image(labelled_pixels(1, 1), "PNG"), "json": meta("a dog \u00e9")}),
        ("000000002", {"txt": b"caption without an image"}),
        ("000000003", {"jpg": encode_image(labelled_pixels(2, 3)), "json": b'{"url": "no caption"}'}),
    ])
    write_tar_shard(tmp_path / "00001.tar", [
        ("000010000", {"webp": _webp(labelled_pixels(3, 4)), "txt": "  caf\u00e9 on a table\n".encode()}),
        ("000010001", {"jpg": b"not an image", "txt": b"broken"}),
    ])
    return str(tmp_path / "{00000..00001}.tar")


def test_pairs_come_from_txt_or_the_json_caption_and_incomplete_samples_are_counted(tmp_path):
    source = CaptionedTarSource(_write(tmp_path))
    assert len(source) == 4 and source.incomplete == 2  # no image; json without a caption
    texts = [source[i]["text"] for i in range(len(source))]
    assert texts == ["a red cat", "a dog \u00e9", "caf\u00e9 on a table", "broken"]
    assert decode_image(source[2]["image"])[0, 0, 0] == 35  # the webp of class 3: red = 10 * 3 + 5
    assert decode_image(source[1]["image"]).shape == (24, 32, 3)


def test_records_read_in_any_order_and_after_pickling(tmp_path):
    import pickle

    source = CaptionedTarSource(_write(tmp_path))
    forward = [source[i] for i in range(len(source))]
    copy = pickle.loads(pickle.dumps(source))
    for i in reversed(range(len(source))):
        assert copy[i]["text"] == forward[i]["text"] and copy[i]["image"] == forward[i]["image"]


def test_a_custom_json_field_is_read_when_asked(tmp_path):
    write_tar_shard(tmp_path / "s.tar", [("k", {"jpg": encode_image(labelled_pixels(0, 0)),
                                                "json": json.dumps({"alt": "an alt text"}).encode()})])
    assert CaptionedTarSource(str(tmp_path / "s.tar"), caption_key="alt")[0]["text"] == "an alt text"
    with pytest.raises(ConfigError, match="no image-text samples"):
        CaptionedTarSource(str(tmp_path / "s.tar"))


def test_a_broken_image_is_skipped_and_counted_by_the_training_stream(tmp_path):
    from frx.data import pipeline
    from frx.data.pp import make_pipeline
    from frx.data.schema import Field

    source = CaptionedTarSource(_write(tmp_path))
    schema = {"image": Field((8, 8, 3), "uint8"), "tokens": Field((6,), "int32")}
    pp = make_pipeline("decode|resize(8)|tokenize(6)")
    ds = pipeline.make_train_dataset(source, pp, schema, batch_size=4, seed=0)
    batches = [ds[i] for i in range(4)]
    skipped = sum(int(np.count_nonzero(b["skipped"])) for b in batches)
    assert skipped == 4  # 16 stream positions over 4 records: the broken one is met 4 times
    assert all(b["tokens"].shape == (4, 6) for b in batches)
