"""`--data.source arrays`: an .npz as a data source; nothing held out unless asked; with
N == batch_size every step sees the whole set."""

import numpy as np
import pytest

from frx.config import ConfigError, DataConfig
from frx.data import pipeline
from frx.data.pp import make_pipeline
from frx.data.sources import make_sources
from tests.support.data_fixtures import image_schema, labelled_pixels, write_class_folder


def numbered_images(n: int, size: int = 8) -> np.ndarray:
    """Image i is filled with the value i, so a batch tells which records it holds."""
    return np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, size, size, 3)).copy()


def write_npz(path, n=12, classes=3, val=0, **extra):
    arrays = {"image": numbered_images(n), "label": np.arange(n) % classes}
    if val:
        arrays.update(val_image=numbered_images(val), val_label=np.arange(val) % classes)
    arrays.update(extra)
    np.savez(path, **arrays)
    return str(path)


def test_arrays_give_train_and_val_and_hold_out_nothing_by_default(tmp_path):
    sources = make_sources(DataConfig(source="arrays", root=write_npz(tmp_path / "a.npz", val=5)), 8)
    assert sorted(sources) == ["train", "val"]
    assert len(sources["train"]) == 12 and len(sources["val"]) == 5 and sources["train"].num_classes == 3
    record = sources["train"][7]
    assert record["label"] == 1 and record["image"].dtype == np.uint8 and (record["image"] == 7).all()


def test_a_minival_is_carved_out_of_arrays_only_when_asked(tmp_path):
    path = write_npz(tmp_path / "a.npz", n=40, classes=4)
    sources = make_sources(DataConfig(source="arrays", root=path, minival_fraction=0.25), 8)
    # per class (labels are known up front): round(0.25 * 10) = 2 of each class's 10 images
    assert len(sources["train"]) == 32 and len(sources["minival"]) == 8
    assert sorted(sources["minival"][i]["label"] for i in range(8)) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_other_sources_keep_big_vision_s_one_percent_minival_by_default(tmp_path):
    write_class_folder(tmp_path / "f", {c: [(f"{i}.png", labelled_pixels(k, i)) for i in range(100)]
                                        for k, c in enumerate(["a", "b"])})
    sources = make_sources(DataConfig(source="folder", root=str(tmp_path / "f")), 16)
    assert len(sources["minival"]) == 2 and len(sources["train"]) == 198


def test_a_batch_of_the_whole_set_holds_every_record_at_every_step(tmp_path):
    source = make_sources(DataConfig(source="arrays", root=write_npz(tmp_path / "a.npz", n=12)), 8)["train"]
    ds = pipeline.make_train_dataset(source, make_pipeline("decode"), image_schema(8), batch_size=12, seed=0)
    orders = []
    for step in range(4):
        batch = ds[step]
        ids = batch["image"][:, 0, 0, 0]
        assert sorted(ids.tolist()) == list(range(12)), f"step {step}"
        assert (batch["label"] == ids % 3).all()
        orders.append(ids.tolist())
    assert len({tuple(o) for o in orders}) > 1  # reshuffled every epoch


@pytest.mark.parametrize("arrays,message", [
    (dict(image=np.zeros((4, 8, 8, 3), np.float32), label=np.zeros(4, int)), "image must be uint8 [N, H, W, 3], got float32"),
    (dict(image=np.zeros((4, 8, 8), np.uint8), label=np.zeros(4, int)), "image must be uint8 [N, H, W, 3]"),
    (dict(image=np.zeros((4, 8, 8, 3), np.uint8)), "has no label array (it has ['image'])"),
    (dict(image=np.zeros((4, 8, 8, 3), np.uint8), label=np.zeros(3, int)), "4 images but 3 labels"),
    (dict(image=np.zeros((4, 8, 8, 3), np.uint8), label=np.zeros(4, float)), "label must be integers [N], got float64"),
    (dict(image=np.zeros((2, 8, 8, 3), np.uint8), label=np.array([0, -1])), "negative class ids"),
    (dict(image=np.zeros((2, 8, 8, 3), np.uint8), label=np.array([0, 5]), num_classes=np.array(3)),
     "label 5 is not below num_classes=3"),
    (dict(image=np.zeros((2, 8, 8, 3), np.uint8), label=np.zeros(2, int), val_image=np.zeros((1, 8, 8, 3), np.uint8)),
     "give val_image and val_label together"),
])
def test_bad_arrays_are_refused_in_one_line(tmp_path, arrays, message):
    np.savez(tmp_path / "a.npz", **arrays)
    with pytest.raises(ConfigError) as error:
        make_sources(DataConfig(source="arrays", root=str(tmp_path / "a.npz")), 8)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_missing_file_and_a_missing_root_are_refused(tmp_path, tiny):
    import dataclasses

    from frx.config import validate

    with pytest.raises(ConfigError, match="is not a file; data.source=arrays reads an .npz"):
        make_sources(DataConfig(source="arrays", root=str(tmp_path / "none.npz")), 8)
    cfg = tiny()
    with pytest.raises(ConfigError, match="data.source=arrays needs --data.root FILE.npz"):
        validate(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, source="arrays")))
