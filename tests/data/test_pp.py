"""Op strings: parsed and checked before anything runs, split into host and device ops, acting on
named fields of a record."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from frx.config import ConfigError
from frx.data import op_registry
from frx.data.pp import make_pipeline
from frx.presets import vit_i1k


def test_op_strings_are_checked_before_running():
    with pytest.raises(ConfigError, match="unknown preprocessing op 'blur'"):
        make_pipeline("decode|blur(3)")
    with pytest.raises(ConfigError, match="host op 'flip_lr' comes after device op 'value_range'"):
        make_pipeline("decode|value_range(-1,1)|flip_lr")
    with pytest.raises(ConfigError, match="bad arguments for preprocessing op central_crop"):
        make_pipeline("decode|central_crop(1, 2, 3)")
    with pytest.raises(ConfigError, match="cannot parse"):
        make_pipeline("decode|resize(224")


def test_the_i1k_preset_pipeline_splits_into_host_and_device_ops():
    pp = make_pipeline(vit_i1k.I1K_TRAIN)
    assert [c.name for c in pp.host] == ["decode_jpeg_and_inception_crop", "flip_lr"]
    assert [c.name for c in pp.device] == ["randaug", "value_range"]


def test_ops_act_on_the_image_field_unless_told_another_key():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    record = {"image": image, "mask": image + 100, "label": 7}
    out = make_pipeline("central_crop(2)|central_crop(1, key='mask', outkey='small_mask')").host_fn()(record, None)
    np.testing.assert_array_equal(out["image"], image[:2, :2])
    np.testing.assert_array_equal(out["mask"], image + 100)  # read, not replaced
    np.testing.assert_array_equal(out["small_mask"], (image + 100)[:1, 1:2])
    assert out["label"] == 7 and record["image"] is image  # the input record is not modified
    batch = {"image": jnp.full((2, 1, 1, 3), 255, jnp.uint8), "other": jnp.zeros((2, 1, 1, 3), jnp.uint8)}
    out = make_pipeline("value_range(0, 1, key='other')").device_fn()(batch, jax.random.PRNGKey(0))
    assert out["image"].dtype == jnp.uint8 and float(out["other"].max()) == 0.0


def test_an_op_that_reads_a_missing_field_names_it():
    with pytest.raises(ValueError, match="op 'flip_lr' reads the field 'text', which the record lacks \\(it has image"):
        make_pipeline("flip_lr(key='text')").host_fn()({"image": np.zeros((2, 2, 3), np.uint8)}, np.random.default_rng(0))


def test_a_whole_record_op_registers_without_a_key():
    @op_registry.host_op("swap_test_fields", keyed=False)
    def swap(a: str, b: str):
        return lambda record, rng: {**record, a: record[b], b: record[a]}

    try:
        out = make_pipeline("swap_test_fields('x', 'y')").host_fn()({"x": 1, "y": 2}, None)
        assert out == {"x": 2, "y": 1}
        with pytest.raises(ConfigError, match="bad arguments for preprocessing op swap_test_fields"):
            make_pipeline("swap_test_fields('x', key='y')")
    finally:
        del op_registry.HOST_OPS["swap_test_fields"]


def test_the_data_config_caps_the_pixels_decode_accepts():
    from frx.config import DataConfig
    from frx.data.decode import BadImage
    from frx.data.pp import data_op_defaults
    from tests.support.hostile_folder import jpeg_declaring

    bomb = {"image": jpeg_declaring(9000, 9000)}  # 81 MP declared in a few hundred bytes
    capped = make_pipeline("decode", data_op_defaults(DataConfig())).host_fn()
    with pytest.raises(BadImage, match="too_large: 9000x9000 pixels exceed max_pixels=50000000"):
        capped(bomb, None)
    explicit = make_pipeline("decode(max_pixels=1000)", data_op_defaults(DataConfig())).host_fn()
    with pytest.raises(BadImage, match="exceed max_pixels=1000"):  # the op string's own argument wins
        explicit(bomb, None)
