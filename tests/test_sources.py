"""Sources people really have: TFDS ArrayRecord (no TensorFlow), webdataset tar shards, ImageNet-V2
folders, ImageNet-ReaL labels; minival splits that work on class-ordered data."""

import json
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from frx import sharding
from frx.config import ConfigError, DataConfig, MeshConfig, TrainConfig
from frx.data import pipeline, splits
from frx.data.decode import decode_image
from frx.data.imagenet import RealSource, imagenet_v2_folder, load_real_labels
from frx.data.ops import make_pipeline
from frx.data.sources import ArraySource, make_sources
from frx.data.tar_shards import TarShardSource, expand_shards
from frx.data.tf_example import encode_example, parse_example
from frx.data.tfds import TfdsSource, find_dataset_dir
from frx.evals.classification import ClassificationEvaluator, make_eval_step
from frx.train import get_durations
from tests.data_fixtures import (class_label_feature, encode_image, imagenet_like_records, labelled_pixels,
                                 write_class_folder, write_tar_shard, write_tfds_dataset)

IMAGENET_FEATURES = {"image": {"pythonClassName": "tensorflow_datasets.core.features.image_feature.Image"},
                     "label": class_label_feature(7), "file_name": {}}


# ------------------------------------------------------------------------------------------------ tf.train.Example


def _protobuf_example_class():
    """tf.train.Example built from TF's .proto field numbers with the official protobuf runtime."""
    pytest.importorskip("google.protobuf")
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="frx_test_example.proto", package="tensorflow", syntax="proto3")
    for name, kind in (("BytesList", F.TYPE_BYTES), ("FloatList", F.TYPE_FLOAT), ("Int64List", F.TYPE_INT64)):
        fdp.message_type.add(name=name).field.add(name="value", number=1, type=kind, label=F.LABEL_REPEATED)
    feature = fdp.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    for number, (field, kind) in enumerate((("bytes_list", "BytesList"), ("float_list", "FloatList"),
                                            ("int64_list", "Int64List")), start=1):
        feature.field.add(name=field, number=number, type=F.TYPE_MESSAGE, type_name=f".tensorflow.{kind}",
                          label=F.LABEL_OPTIONAL, oneof_index=0)
    features = fdp.message_type.add(name="Features")
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=F.TYPE_MESSAGE, type_name=".tensorflow.Feature", label=F.LABEL_OPTIONAL)
    features.field.add(name="feature", number=1, type=F.TYPE_MESSAGE, type_name=".tensorflow.Features.FeatureEntry",
                       label=F.LABEL_REPEATED)
    fdp.message_type.add(name="Example").field.add(name="features", number=1, type=F.TYPE_MESSAGE,
                                                   type_name=".tensorflow.Features", label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.Example"))


def test_example_parser_reads_what_protobuf_writes_and_the_encoder_writes_what_protobuf_reads():
    Example = _protobuf_example_class()
    message = Example()
    feature = message.features.feature
    feature["image"].bytes_list.value.append(b"\xff\xd8jpeg bytes\x00")
    feature["label"].int64_list.value.extend([417, -3, 2**40])
    feature["scores"].float_list.value.extend([0.5, -1.25])
    feature["empty"].int64_list.SetInParent()
    parsed = parse_example(message.SerializeToString())
    assert parsed["image"] == [b"\xff\xd8jpeg bytes\x00"]
    np.testing.assert_array_equal(parsed["label"], [417, -3, 2**40])
    np.testing.assert_array_equal(parsed["scores"], np.float32([0.5, -1.25]))
    assert len(parsed["empty"]) == 0

    ours = encode_example({"image": b"abc", "label": 5, "real_label": [], "file_name": "x.JPEG", "w": [0.25]})
    back = Example.FromString(ours).features.feature
    assert back["image"].bytes_list.value == [b"abc"] and list(back["label"].int64_list.value) == [5]
    assert back["file_name"].bytes_list.value == [b"x.JPEG"] and list(back["w"].float_list.value) == [0.25]
    assert back["real_label"].WhichOneof("kind") == "int64_list" and not back["real_label"].int64_list.value


# ------------------------------------------------------------------------------------------------ TFDS


def test_tfds_arrayrecord_split_reads_images_labels_and_names_across_shards(tmp_path):
    records = imagenet_like_records(30, 7)
    directory = write_tfds_dataset(tmp_path, "imagenet2012", "5.1.0", {"train": records}, IMAGENET_FEATURES, shards=3)
    assert find_dataset_dir(str(tmp_path), "imagenet2012") == directory
    source = TfdsSource(directory, "train")
    assert len(source) == 30 and source.num_classes == 7 and source.label_shape == ()
    for i in (0, 9, 10, 29):  # first and last record of shards
        record = source[i]
        assert record["label"] == i % 7 and record["file_name"] == f"train_{i:08d}.JPEG"
        assert abs(int(decode_image(record["image"])[0, 0, 0]) - (10 * (i % 7) + 5)) <= 3
    clone = pickle.loads(pickle.dumps(source))  # what Grain does to reach worker processes
    assert clone[17]["label"] == 17 % 7


def test_tfds_source_splits_train_like_big_vision_and_counts_steps_from_the_split(tmp_path):
    write_tfds_dataset(tmp_path, "imagenet2012", "5.1.0",
                       {"train": imagenet_like_records(300, 7), "validation": imagenet_like_records(20, 7, prefix="val")},
                       IMAGENET_FEATURES)
    sources = make_sources(DataConfig(source="tfds", root=str(tmp_path)), 224)
    # train[:99%] / train[99%:] with TFDS's rounding: round(0.99 * 300) = 297.
    assert len(sources["train"]) == 297 and len(sources["minival"]) == 3 and len(sources["val"]) == 20
    assert [sources["minival"][i]["file_name"] for i in range(3)] == [f"train_{i:08d}.JPEG" for i in (297, 298, 299)]
    cfg = TrainConfig(batch_size=32, total_epochs=2)
    assert get_durations(cfg, len(sources["train"])).total_steps == round(2 * 297 / 32)


def test_tfds_imagenet_v2_and_real_are_found_in_the_data_dir(tmp_path):
    write_tfds_dataset(tmp_path, "imagenet2012", "5.1.0",
                       {"train": imagenet_like_records(20, 7), "validation": imagenet_like_records(6, 7, prefix="val")},
                       IMAGENET_FEATURES)
    write_tfds_dataset(tmp_path, "imagenet_v2/matched-frequency", "3.0.0", {"test": imagenet_like_records(5, 7)},
                       IMAGENET_FEATURES, shards=1)
    real = [{"image": encode_image(labelled_pixels(1, i)), "real_label": labels, "original_label": 1,
             "file_name": f"ILSVRC2012_val_{i + 1:08d}.JPEG"} for i, labels in enumerate([[1, 3], [], [6]])]
    real_features = {"image": {}, "original_label": class_label_feature(7),
                     "real_label": {"sequence": {"feature": class_label_feature(7), "length": "-1"}}}
    write_tfds_dataset(tmp_path, "imagenet2012_real", "1.0.0", {"validation": real}, real_features, shards=1)
    sources = make_sources(DataConfig(source="tfds", root=str(tmp_path)), 224)
    assert len(sources["v2"]) == 5 and sources["v2"][4]["label"] == 4
    assert sources["real"].label_shape == (7,)
    np.testing.assert_array_equal(sources["real"][0]["label"], [0, 1, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(sources["real"][1]["label"], np.zeros(7))  # no ReaL label: masked in eval


def test_tfds_tfrecord_data_and_missing_splits_are_clear_errors(tmp_path):
    directory = write_tfds_dataset(tmp_path, "imagenet2012", "5.1.0", {"train": imagenet_like_records(4, 7)},
                                   IMAGENET_FEATURES, shards=1, file_format="tfrecord")
    with pytest.raises(ConfigError, match="prepare it again with --file_format=array_record"):
        TfdsSource(directory, "train")
    with pytest.raises(ConfigError, match="no TFDS dataset 'imagenet2012' under"):
        find_dataset_dir(str(tmp_path / "elsewhere"), "imagenet2012")


# ------------------------------------------------------------------------------------------------ tar shards


def test_tar_shards_index_samples_by_key_and_read_them_in_any_order(tmp_path):
    rgb = lambda label, i: labelled_pixels(label, i, (16, 20))  # noqa: E731
    write_tar_shard(tmp_path / "train-000.tar", [
        ("a/s0", {"jpg": encode_image(rgb(2, 0)), "cls": b"2"}),
        ("a/s1", {"png": encode_image(rgb(0, 1), "PNG"), "json": json.dumps({"label": 0}).encode()}),
        ("a/meta", {"txt": b"3"}),  # no image: not a sample
    ])
    write_tar_shard(tmp_path / "train-001.tar", [
        ("b/s2", {"webp": encode_image(rgb(1, 2), "WEBP"), "txt": b" 1\n"}),
        ("b/s3.v2", {"jpeg": encode_image(rgb(3, 3)), "cls": b"3"}),  # key stops at the first dot
    ])
    assert expand_shards(str(tmp_path / "train-{000..001}.tar")) == [str(tmp_path / f"train-00{i}.tar") for i in (0, 1)]
    source = TarShardSource(str(tmp_path / "train-{000..001}.tar"))
    assert source.keys == ["a/s0", "a/s1", "b/s2", "b/s3"] and source.num_classes == 4
    for i in (3, 0, 2, 1):
        record = source[i]
        assert record["label"] == [2, 0, 1, 3][i]
        assert abs(int(decode_image(record["image"])[0, 0, 0]) - (10 * record["label"] + 5)) <= 3
    assert pickle.loads(pickle.dumps(source))[1]["label"] == 0
    with pytest.raises(ConfigError, match="not found"):
        TarShardSource(str(tmp_path / "train-{002..003}.tar"))


def test_tar_label_that_is_not_a_class_is_a_clear_error(tmp_path):
    write_tar_shard(tmp_path / "s.tar", [("x", {"jpg": encode_image(labelled_pixels(0, 0)), "txt": b"a cat"})])
    with pytest.raises(ConfigError, match="x.txt .* does not hold an integer class"):
        TarShardSource(str(tmp_path / "s.tar"))


# ------------------------------------------------------------------------------------------------ splits


def test_hash_holdout_is_class_balanced_in_expectation_on_class_ordered_data():
    classes, per_class, fraction = 40, 500, 0.05
    keys = [f"class{c:03d}/img{i:04d}.jpg" for c in range(classes) for i in range(per_class)]
    labels = np.repeat(np.arange(classes), per_class)
    train, held = splits.holdout_by_hash(keys, fraction)
    counts = np.bincount(labels[held], minlength=classes)
    # Each item is held out independently with p = fraction: per-class counts are Binomial(500, 0.05).
    expected = per_class * fraction
    chi2 = float(((counts - expected) ** 2 / (expected * (1 - fraction))).sum())
    assert (counts > 0).all() and chi2 < 80  # chi-square with 40 dof: P(> 80) < 1e-4
    assert sorted(train + held) == list(range(len(keys)))
    # Deterministic and a property of each key, not of the listing order.
    order = np.random.default_rng(0).permutation(len(keys))
    _, held_shuffled = splits.holdout_by_hash([keys[i] for i in order], fraction)
    assert sorted(keys[order[i]] for i in held_shuffled) == sorted(keys[i] for i in held)
    # The failure it avoids: big_vision's tail slice of a class-ordered list holds out one class.
    _, tail = splits.holdout_tail(len(keys), fraction)
    assert set(labels[tail]) == {classes - 2, classes - 1} and splits.holdout_tail(1281167, 0.01)[1][0] == 1268355


def test_index_hash_holdout_needs_no_labels_and_matches_its_fraction():
    train, held = splits.holdout_by_hash(200_000, 0.01)
    assert abs(len(held) - 2000) < 4 * np.sqrt(2000) and len(train) + len(held) == 200_000
    assert held == splits.holdout_by_hash(200_000, 0.01)[1]
    assert held != splits.holdout_by_hash(200_000, 0.01, salt=1)[1]


def test_minival_split_modes_apply_to_folders_and_tar_shards(tmp_path):
    pixels = labelled_pixels(0, 0, (12, 12))
    write_class_folder(tmp_path / "f", {c: [(f"{i:03d}.png", pixels) for i in range(100)] for c in ("a", "b")})
    per_class = make_sources(DataConfig(source="folder", root=str(tmp_path / "f"), minival_fraction=0.1), 16)
    assert [per_class["minival"].labels.count(c) for c in (0, 1)] == [10, 10]
    hashed = make_sources(DataConfig(source="folder", root=str(tmp_path / "f"), minival_fraction=0.1,
                                     minival_split="hash"), 16)
    assert 5 <= len(hashed["minival"]) <= 40 and len(hashed["train"]) + len(hashed["minival"]) == 200
    samples = [(f"k{i:03d}", {"png": encode_image(pixels, "PNG"), "cls": str(i % 3).encode()}) for i in range(60)]
    write_tar_shard(tmp_path / "t.tar", samples)
    tar = make_sources(DataConfig(source="tar", root=str(tmp_path / "t.tar"), minival_fraction=0.2), 16)
    assert len(tar["train"]) + len(tar["minival"]) == 60 and tar["train"].num_classes == 3
    tar_per_class = make_sources(DataConfig(source="tar", root=str(tmp_path / "t.tar"), minival_fraction=0.2,
                                            minival_split="per_class"), 16)  # the tar index has the labels
    held = tar_per_class["minival"]
    assert sorted(int(held[i]["label"]) for i in range(len(held))) == [0] * 4 + [1] * 4 + [2] * 4
    with pytest.raises(ConfigError, match="per_class needs labels up front"):
        from frx.config import validate

        validate(TrainConfig(total_steps=1, data=DataConfig(source="tfds", root="x", minival_split="per_class")))


def test_an_empty_holdout_is_left_out_rather_than_scored(tmp_path):
    pixels = labelled_pixels(0, 0, (12, 12))
    write_class_folder(tmp_path, {c: [(f"{i}.png", pixels) for i in range(3)] for c in ("a", "b")})
    # 1% of 3 images per class rounds to none: there is no minival to evaluate.
    sources = make_sources(DataConfig(source="folder", root=str(tmp_path), minival_fraction=0.01), 16)
    assert set(sources) == {"train"} and len(sources["train"]) == 6
    assert set(splits.split_train_minival(list(range(5)), "tail", 0.01)) == {"train"}  # round(4.95) = 5 train


# ------------------------------------------------------------------------------------------------ ImageNet-V2 / ReaL


def test_imagenet_v2_folder_labels_come_from_numeric_folder_names(tmp_path):
    pixels = labelled_pixels(0, 0, (12, 12))
    write_class_folder(tmp_path, {str(c): [("x.jpeg", pixels)] for c in (0, 1, 2, 10, 100)})
    source = imagenet_v2_folder(str(tmp_path))
    assert source.labels == [0, 1, 2, 10, 100]  # numeric, not "0" < "1" < "10" < "100" < "2"
    assert source.num_classes == 1000
    with pytest.raises(ConfigError, match="class indices"):
        imagenet_v2_folder(str(tmp_path / "0"))


def _val_folder_with_real(tmp_path):
    names = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 7)]
    write_class_folder(tmp_path / "val", {"a": [(n, labelled_pixels(0, i)) for i, n in enumerate(names[:3])],
                                          "b": [(n, labelled_pixels(1, i)) for i, n in enumerate(names[3:])]})
    real = [[0], [], [1, 2], [1], [], [0, 1]]  # entry i belongs to ILSVRC2012_val_{i+1}
    (tmp_path / "real.json").write_text(json.dumps(real))
    return real


def test_real_labels_skip_unlabelled_images_and_become_multi_hot(tmp_path):
    _val_folder_with_real(tmp_path)
    write_class_folder(tmp_path / "train", {c: [("t.jpeg", labelled_pixels(0, 0))] for c in ("a", "b", "c")})
    cfg = DataConfig(source="folder", root=str(tmp_path / "train"), val_root=str(tmp_path / "val"),
                     real_json=str(tmp_path / "real.json"), minival_fraction=0)
    sources = make_sources(cfg, 16)
    real = sources["real"]
    assert isinstance(real, RealSource) and len(real) == 4 and len(sources["val"]) == 6
    # The images with ReaL labels are val 1, 3, 4 and 6; val 2 and 5 have an empty set.
    np.testing.assert_array_equal(np.stack([real[i]["label"] for i in range(4)]),
                                  [[1, 0, 0], [0, 1, 1], [0, 1, 0], [1, 1, 0]])
    with pytest.raises(ConfigError, match="real.json"):
        load_real_labels(str(tmp_path / "missing.json"))


def test_eval_scores_multi_hot_labels_like_big_vision():
    class FixedLogits(nnx.Module):
        def __init__(self, logits):
            self.logits = nnx.Param(jnp.asarray(logits, jnp.float32))

        def __call__(self, images):
            return self.logits[...]

    logits = [[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0], [5.0, 0.0, 0.0]]
    graphdef, params = nnx.split(FixedLogits(logits))
    step = make_eval_step(graphdef, lambda x, rng: x, num_classes=3)
    batch = {"image": jnp.zeros((4, 2, 2, 3)), "mask": jnp.array([True, True, True, False]),
             "label": jnp.array([[1, 1, 0], [1, 0, 0], [0, 0, 0], [1, 0, 0]], jnp.float32),
             "skipped": jnp.zeros(4, bool)}
    sums = step(params, batch)
    # Row 0: top-1 (class 0) is in {0, 1}; row 1: class 1 not in {0}; row 2 has no label; row 3 is padding.
    assert float(sums["count"]) == 2 and float(sums["correct"]) == 1
    log_softmax = jax.nn.log_softmax(jnp.asarray(logits[:2]))
    expected_loss = -(log_softmax[0, 0] + log_softmax[0, 1]) - log_softmax[1, 0]
    assert float(sums["loss"]) == pytest.approx(float(expected_loss), rel=1e-5)


def test_eval_batches_carry_multi_hot_labels_and_pad_with_empty_rows(tmp_path):
    _val_folder_with_real(tmp_path)
    from frx.data.sources import FolderSource, scan_folder

    val = FolderSource(*scan_folder(str(tmp_path / "val")), "val")
    real = RealSource(val, load_real_labels(str(tmp_path / "real.json")), num_classes=3)
    batches = list(pipeline.eval_batches(real, make_pipeline("decode|resize(8)"), batch_size=3, image_shape=(8, 8, 3)))
    labels = np.concatenate([b["label"] for b in batches])
    mask = np.concatenate([b["mask"] for b in batches])
    assert labels.shape == (6, 3) and mask.tolist() == [True] * 4 + [False] * 2
    np.testing.assert_array_equal(labels, [[1, 0, 0], [0, 1, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0], [0, 0, 0]])


class _FixedLogits(nnx.Module):
    def __init__(self):
        self.logits = nnx.Param(jnp.asarray([5.0, 0.0, 0.0]))

    def __call__(self, images):
        return jnp.broadcast_to(self.logits[...], (images.shape[0], 3))


def test_eval_splits_share_one_compiled_step_and_an_empty_split_reports_nothing():
    graphdef, params = nnx.split(_FixedLogits())
    mesh, pp = sharding.make_mesh(MeshConfig()), make_pipeline("decode|value_range(-1, 1)")
    images = np.zeros((3, 8, 8, 3), np.uint8)

    def evaluator(name, source):
        return ClassificationEvaluator(name, source, pp, graphdef=graphdef, num_classes=3, batch_size=8,
                                       image_size=8, mesh=mesh, threads=1)

    val = evaluator("val", ArraySource(images, np.array([0, 0, 1]), 3, "val"))
    empty = evaluator("minival", ArraySource(images[:0], np.zeros(0, np.int64), 3, "empty"))
    assert empty.step is val.step  # compiled once for both splits
    results = val.run(params)
    assert results["eval/val/acc"] == pytest.approx(2 / 3)
    assert empty.run(params) == {}  # no made-up accuracy 0.0 and loss 0.0
