"""tf.train.Example without TensorFlow: the parser reads what protobuf writes and the encoder writes
what protobuf reads."""


import numpy as np
import pytest

from frx.data.tf_example import encode_example, parse_example


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
