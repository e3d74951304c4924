"""RandAugment: every op against values derived by hand from big_vision's TF code on calibration
grids, against PIL (which big_vision's ops imitate) on a real photo, the known quirks, the draw
statistics, and the batched device op against the one-image API."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from PIL import Image, ImageEnhance, ImageOps

from frx.config import ConfigError
from frx.data import randaug
from frx.data.pp import make_pipeline
from frx.data.randaug import OPS, apply_op, level_to_arg


def checkerboard(light=(255, 255, 255), dark=(0, 0, 0), size=224, square=56):
    """EIFY's calibration grid: size x size, squares of `square` px, the top-left one dark."""
    cells = (np.arange(size)[:, None] // square + np.arange(size)[None, :] // square) % 2
    return np.where(cells[..., None] == 1, np.uint8(light), np.uint8(dark)).astype(np.uint8)


def ramp():
    """16 x 16 grey image holding every value 0..255 once (row-major)."""
    return np.repeat(np.arange(256, dtype=np.uint8).reshape(16, 16, 1), 3, axis=-1)


V = np.arange(256)


def _on_ramp(name, *args, **kwargs):
    return apply_op(name, ramp(), args, **kwargs)[..., 0].reshape(-1).astype(int)


# ------------------------------------------------------------------------------------------------ levels


def test_ops_and_level_mapping_are_big_vision_s():
    assert OPS == ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "Color", "Contrast",
                   "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateX", "TranslateY", "Cutout", "SolarizeAdd")
    at10 = {n: level_to_arg(n, 10) for n in OPS}
    assert at10["Rotate"] == (30.0,) and at10["Posterize"] == (4,) and at10["Solarize"] == (256,)
    assert at10["SolarizeAdd"] == (110,) and at10["ShearX"] == (0.3,) and at10["TranslateY"] == (100.0,)
    assert at10["Cutout"] == (40,) and at10["Color"] == pytest.approx((1.9,)) and at10["Invert"] == ()
    assert {level_to_arg(n, 5) for n in ("Color", "Contrast", "Brightness", "Sharpness")} == {(1.0,)}  # exactly 1
    assert level_to_arg("Posterize", 0) == (0,) and level_to_arg("Solarize", 9) == (230,)


# ------------------------------------------------------------------------------------------------ lookup ops


def test_pixelwise_ops_on_every_grey_level():
    np.testing.assert_array_equal(_on_ramp("Invert"), 255 - V)
    np.testing.assert_array_equal(_on_ramp("Posterize", 4), V & 0xF0)
    np.testing.assert_array_equal(_on_ramp("Posterize", 8), V)
    np.testing.assert_array_equal(_on_ramp("SolarizeAdd", 110), np.where(V < 128, np.minimum(V + 110, 255), V))
    np.testing.assert_array_equal(_on_ramp("Solarize", 128), np.where(V < 128, V, 255 - V))
    np.testing.assert_array_equal(_on_ramp("Solarize", 230), np.where(V < 230, V, 255 - V))


def test_solarize_at_level_10_inverts_unless_the_bug_is_switched_off():
    # threshold int(10/10 * 256) = 256 is 0 as a uint8, and no pixel is < 0 (big_vision issue #110).
    np.testing.assert_array_equal(_on_ramp("Solarize", 256), 255 - V)
    np.testing.assert_array_equal(_on_ramp("Solarize", 256, bug_compat=False), V)


def test_posterize_with_zero_bits_keeps_the_top_bit():
    # shift 8 - 0 = 8 is clamped to 7 by TF's uint8 shift ops, so bits 0 acts like bits 1 (PIL: black).
    np.testing.assert_array_equal(_on_ramp("Posterize", 0), V & 0x80)
    np.testing.assert_array_equal(_on_ramp("Posterize", 1), V & 0x80)


def test_brightness_blends_in_float32_and_truncates():
    out = _on_ramp("Brightness", 1.9)
    # 1.9f * 100 = 189.9999976 rounds to the float32 190.0 (float64 would truncate to 189).
    assert (out[0], out[10], out[100], out[134], out[135], out[255]) == (0, 19, 190, 254, 255, 255)
    assert np.all(np.diff(out) >= 0) and np.all(out >= np.minimum(V, 255))


def test_level_5_enhance_ops_are_the_identity(photo):
    for name in ("Color", "Contrast", "Brightness", "Sharpness"):
        np.testing.assert_array_equal(apply_op(name, photo, level_to_arg(name, 5)), photo)


def test_autocontrast_stretches_each_channel_to_the_full_range():
    out = apply_op("AutoContrast", checkerboard(light=(64, 192, 192), dark=(192, 64, 64)))
    # per channel: scale 255 / (192 - 64), offset -64 * scale -> 64 -> 0 and 192 -> 255 exactly
    assert {tuple(p) for p in out.reshape(-1, 3)} == {(255, 0, 0), (0, 255, 255)}
    flat = np.dstack([ramp()[..., 0], np.full((16, 16), 77, np.uint8), ramp()[..., 0] // 2])
    out = apply_op("AutoContrast", flat)
    assert (out[..., 1] == 77).all() and out[..., 2].min() == 0 and out[..., 2].max() == 255


def test_equalize_follows_pil_s_step_rule():
    def image(values, counts):
        return np.repeat(np.repeat(np.array(values, np.uint8), counts)[None, :, None], 3, axis=-1)

    # 200 pixels each of 0, 50, 200: step = (600 - 200) // 255 = 1, lut[v] = pixels below v.
    out = apply_op("Equalize", image([0, 50, 200], [200, 200, 200]))[0, :, 0]
    np.testing.assert_array_equal(np.unique(out), [0, 200, 255])
    # 100 each: step = 200 // 255 = 0 -> unchanged.
    same = image([0, 50, 200], [100, 100, 100])
    np.testing.assert_array_equal(apply_op("Equalize", same), same)
    # The grid after TranslateX(100): 13888 black, 22400 fill, 13888 white: step = 36288 // 255 = 142,
    # lut[128] = (13888 + 71) // 142 = 98 (the 98 line in the calibration spectrum).
    shifted = apply_op("TranslateX", checkerboard(), (100.0,))
    assert np.bincount(shifted[..., 0].ravel(), minlength=256)[[0, 128, 255]].tolist() == [13888, 22400, 13888]
    assert set(np.unique(apply_op("Equalize", shifted))) == {0, 98, 255}


def test_contrast_blends_towards_hw_over_256_with_the_bug_and_the_mean_grey_without():
    grid = checkerboard(light=(64, 192, 192), dark=(192, 64, 64))
    buggy = {tuple(p) for p in apply_op("Contrast", grid, (1.9,)).reshape(-1, 3)}
    fixed = {tuple(p) for p in apply_op("Contrast", grid, (1.9,), bug_compat=False).reshape(-1, 3)}
    # 224*224/256 = 196: 196 + 1.9 (192 - 196) = 188.4; the grey means are 102 and 154 -> 128: 128 + 1.9 * 64 = 249.6
    assert buggy == {(188, 0, 0), (0, 188, 188)} and fixed == {(249, 6, 6), (6, 249, 249)}  # big_vision issue #109
    small = np.full((32, 32, 3), 100, np.uint8)  # 32*32/256 = 4: 4 + 1.9 * 96 = 186.4
    assert (apply_op("Contrast", small, (1.9,)) == 186).all()
    large = np.full((300, 300, 3), 250, np.uint8)  # 90000/256 = 351.6, clipped to 255: 255 - 1.9 * 5 = 245.5
    assert (apply_op("Contrast", large, (1.9,)) == 245).all()


def test_color_blends_with_tf_s_grey():
    out = apply_op("Color", checkerboard(light=(64, 192, 192), dark=(192, 64, 64)), (1.9,))
    # grey(192, 64, 64) = floor((.2989*192 + .587*64 + .114*64) / 255 * 255.5) = 102 -> (273, 29.8, 29.8)
    # grey(64, 192, 192) = 154 -> (-17, 226.2, 226.2); clipped and truncated.
    assert {tuple(p) for p in out.reshape(-1, 3)} == {(255, 29, 29), (0, 226, 226)}


def test_sharpness_sharpens_edges_and_keeps_the_border():
    grid = checkerboard(light=(64, 192, 192), dark=(192, 64, 64))
    out = apply_op("Sharpness", grid, (1.9,))
    # Edge pixel (10, 55), right neighbours light: smooth = (10 * 192 + 3 * 64) / 13 = 162.5 -> 162,
    # 162 + 1.9 * 30 = 219; other channels (10 * 64 + 3 * 192) / 13 = 93 -> 93 - 1.9 * 29 = 37.9.
    assert tuple(out[10, 55]) == (219, 37, 37) and tuple(out[10, 56]) == (37, 219, 219)
    # Corner pixel (55, 55): 9 dark and 4 light weights: 1984 / 13 -> 152 -> 228; 1344 / 13 -> 103 -> 28.9.
    assert tuple(out[55, 55]) == (228, 28, 28)
    assert (out[0] == grid[0]).all() and (out[:, -1] == grid[:, -1]).all()  # the 1-px border is kept
    assert (out[20:40, 20:40] == grid[20:40, 20:40]).all()  # flat areas are unchanged
    np.testing.assert_array_equal(apply_op("Sharpness", checkerboard(), (1.9,)), checkerboard())  # saturates


# ------------------------------------------------------------------------------------------------ geometry


def test_rotate_is_counterclockwise_about_the_centre_with_fill_128(photo):
    square = photo[100:300, 150:350]
    np.testing.assert_array_equal(apply_op("Rotate", square, (90.0,)), np.rot90(square, 1))
    np.testing.assert_array_equal(apply_op("Rotate", square, (-90.0,)), np.rot90(square, -1))
    white = np.full((224, 224, 3), 255, np.uint8)
    out = apply_op("Rotate", white, (30.0,))[..., 0]
    # A square rotated by 30 degrees leaves 4 corner triangles with legs 1 - (1 - sin)/cos and
    # 1 - (1 - cos)/sin (in half-sides): 15.47% of the area, filled with 128.
    s, c = np.sin(np.pi / 6), np.cos(np.pi / 6)
    uncovered = 4 * 0.5 * (1 - (1 - s) / c) * (1 - (1 - c) / s) / 4
    assert abs((out == 128).mean() - uncovered) < 0.01 and set(np.unique(out)) == {128, 255}
    assert out[0, 0] == out[0, -1] == out[-1, 0] == out[-1, -1] == 128 and out[112, 112] == 255


def test_shear_and_translate_read_shifted_pixels_and_fill_the_rest(photo):
    img = photo[:60, :80]
    out = apply_op("ShearX", img, (0.3,))  # output (x, y) reads input (x + 0.3 y, y)
    np.testing.assert_array_equal(out[0], img[0])
    np.testing.assert_array_equal(out[10, :77], img[10, 3:])
    assert (out[10, 77:] == 128).all()
    out = apply_op("ShearX", img, (-0.3,))
    np.testing.assert_array_equal(out[20, 6:], img[20, :-6])
    assert (out[20, :6] == 128).all()
    out = apply_op("ShearY", img, (0.3,))  # output (x, y) reads input (x, 0.3 x + y)
    np.testing.assert_array_equal(out[:57, 10], img[3:, 10])
    big = photo[:224, :224]
    out = apply_op("TranslateX", big, (100.0,))
    np.testing.assert_array_equal(out[:, :124], big[:, 100:])
    assert (out[:, 124:] == 128).all()
    out = apply_op("TranslateY", big, (-100.0,))
    np.testing.assert_array_equal(out[100:], big[:124])
    assert (out[:100] == 128).all()


def test_nearest_neighbour_rounds_halves_away_from_zero():
    img = ramp()
    # std::round: x + 0.5 -> x + 1 and x - 0.5 -> x for x >= 1, -0.5 -> -1 (outside) for x = 0.
    out = apply_op("TranslateX", img, (0.5,))
    np.testing.assert_array_equal(out[:, :-1], img[:, 1:])
    assert (out[:, -1] == 128).all()
    out = apply_op("TranslateX", img, (-0.5,))
    np.testing.assert_array_equal(out[:, 1:], img[:, 1:])
    assert (out[:, 0] == 128).all()


def test_cutout_fills_a_square_clipped_at_the_border(photo):
    img = photo[:224, :224]
    out = apply_op("Cutout", img, (40,), center=(10, 200))
    expected = img.copy()
    expected[0:50, 160:224] = 128  # rows [max(0, 10 - 40), 10 + 40), cols [160, min(224, 240))
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(apply_op("Cutout", img, (0,), center=(100, 100)), img)
    with pytest.raises(ValueError, match="Cutout needs center"):
        apply_op("Cutout", img, (40,))


# ------------------------------------------------------------------------------------------------ real photo vs PIL


def test_ops_agree_with_pil_on_a_real_photo(photo):
    pil = Image.fromarray(photo)

    def diff(name, args, reference, **kw):
        return np.abs(apply_op(name, photo, args, **kw).astype(int) - np.asarray(reference).astype(int))

    assert diff("Equalize", (), ImageOps.equalize(pil)).max() == 0
    assert diff("Invert", (), ImageOps.invert(pil)).max() == 0
    assert diff("Posterize", (4,), ImageOps.posterize(pil, 4)).max() == 0
    assert diff("Solarize", (128,), ImageOps.solarize(pil, 128)).max() == 0
    assert diff("AutoContrast", (), ImageOps.autocontrast(pil)).max() <= 1  # float32 vs float64
    # PIL rounds where TF truncates (and its grey and mean differ by one): at factor 1.9, within 2.
    assert diff("Brightness", (1.9,), ImageEnhance.Brightness(pil).enhance(1.9)).max() <= 1
    assert diff("Color", (1.9,), ImageEnhance.Color(pil).enhance(1.9)).max() <= 2
    assert diff("Contrast", (1.9,), ImageEnhance.Contrast(pil).enhance(1.9), bug_compat=False).max() <= 2
    assert diff("Sharpness", (1.9,), ImageEnhance.Sharpness(pil).enhance(1.9)).max() <= 2
    translated = pil.transform(pil.size, Image.AFFINE, (1, 0, 37, 0, 1, 0), Image.NEAREST, fillcolor=(128,) * 3)
    assert diff("TranslateX", (37.0,), translated).max() == 0


def test_apply_op_keeps_the_array_kind_and_jits(photo):
    assert isinstance(apply_op("Invert", photo), np.ndarray)
    rotated = jax.jit(lambda img, deg: apply_op("Rotate", img, (deg,)))(jnp.asarray(photo), 90.0)
    assert isinstance(rotated, jax.Array)
    np.testing.assert_array_equal(np.asarray(rotated), apply_op("Rotate", photo, (90.0,)))
    with pytest.raises(ValueError, match="unknown RandAugment op 'Identity'"):
        apply_op("Identity", photo)


# ------------------------------------------------------------------------------------------------ batched randaug


def test_draws_pick_ops_uniformly_and_signs_fifty_fifty():
    draws = randaug.sample_layers(jax.random.PRNGKey(0), 6000, 2, 224, 160)
    ops = np.asarray(draws.op).ravel()
    counts = np.bincount(ops, minlength=16)
    expected = ops.size / 16
    assert ((counts - expected) ** 2 / expected).sum() < 37.7  # chi-square, 15 dof, p = 0.001
    signs = np.asarray(draws.sign).ravel()
    assert set(np.unique(signs)) == {-1.0, 1.0} and abs(signs.mean()) < 4 / np.sqrt(signs.size)
    assert np.asarray(draws.center_y).min() == 0 and np.asarray(draws.center_y).max() == 223
    assert np.asarray(draws.center_x).max() == 159
    # layers are independent: the same op twice in a row happens 1/16 of the time
    assert abs((np.asarray(draws.op[0]) == np.asarray(draws.op[1])).mean() - 1 / 16) < 4 * np.sqrt(1 / 16 / 6000)


def test_batched_randaug_applies_each_image_s_drawn_ops(photo):
    images = np.stack([photo[32 * i : 32 * i + 48, 16 * i : 16 * i + 48] for i in range(16)])
    rng = np.random.default_rng(0)
    draws = randaug.Draws(op=jnp.array([np.arange(16), np.arange(16)[::-1]], jnp.int32),
                          sign=jnp.asarray(rng.choice([-1.0, 1.0], (2, 16)), jnp.float32),
                          center_y=jnp.asarray(rng.integers(0, 48, (2, 16)), jnp.int32),
                          center_x=jnp.asarray(rng.integers(0, 48, (2, 16)), jnp.int32))
    out = np.asarray(jax.jit(lambda x, d: randaug.apply_layers(x, d, 9))(jnp.asarray(images), draws))
    for i in range(16):
        expected = images[i]
        for layer in range(2):
            name = OPS[int(draws.op[layer, i])]
            args = level_to_arg(name, 9)
            if name in randaug.SIGNED_OPS:
                args = (args[0] * float(draws.sign[layer, i]),)
            expected = apply_op(name, expected, args,
                                center=(int(draws.center_y[layer, i]), int(draws.center_x[layer, i])))
        np.testing.assert_array_equal(out[i], expected, err_msg=f"image {i}")


def _on_images(pp):
    """The device ops of `pp` as a function of a batch of images."""
    device_fn = pp.device_fn()
    return lambda images, key: device_fn({"image": images}, key)["image"]


def test_randaug_pp_op_runs_on_sharded_batches_and_is_deterministic(photo):
    images = jnp.asarray(np.stack([photo[8 * i : 8 * i + 32, 8 * i : 8 * i + 32] for i in range(8)]))
    run = jax.jit(_on_images(make_pipeline("randaug(2, 10)")))
    a, b = run(images, jax.random.PRNGKey(1)), run(images, jax.random.PRNGKey(1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, run(images, jax.random.PRNGKey(2)))
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
    sharded = jax.device_put(images, NamedSharding(mesh, P("data")))
    np.testing.assert_array_equal(run(sharded, jax.random.PRNGKey(1)), a)  # device count does not matter
    fixed = _on_images(make_pipeline("randaug(2, 10, bug_compat=False)|value_range(-1, 1)"))
    assert fixed(images, jax.random.PRNGKey(1)).dtype == jnp.float32
    with pytest.raises(ValueError, match="put it before value_range"):
        _on_images(make_pipeline("value_range(-1, 1)|randaug(2, 10)"))(images, jax.random.PRNGKey(0))
    with pytest.raises(ConfigError, match="randaug needs num_layers >= 0"):
        make_pipeline("randaug(-1, 10)")


def test_importing_randaug_does_not_start_the_jax_backend():
    # The backend must start after the launcher has set the device count and the distributed setup.
    code = "import frx.data.randaug, jax._src.xla_bridge as xb; assert not xb._backends, 'backend started'"
    subprocess.run([sys.executable, "-c", code], check=True)
