"""Test set-up: 8 fake CPU devices (so sharding is always exercised) and tiny models."""

import os

# Must happen before JAX initialises its backend.
os.environ.setdefault("JAX_NUM_CPU_DEVICES", "8")
os.environ.setdefault("FRX_LAUNCHED", "1")  # CLI calls made in-process must not re-exec
# dtype "auto" follows the machine (bf16 matrix units or not); pinned references must not
os.environ.setdefault("FRX_AUTO_DTYPE", "float32")
os.environ.setdefault("FRX_COMPILATION_CACHE", "off")  # hermetic: no user cache read or written (tested apart)

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", int(os.environ["JAX_NUM_CPU_DEVICES"]))

import pytest  # noqa: E402

from tests.support.configs import tiny_config  # noqa: E402


@pytest.fixture
def tiny():
    return tiny_config


@pytest.fixture(scope="session")
def photo():
    """A real photograph shipped with matplotlib (Grace Hopper, 600x512 JPEG), as uint8 RGB."""
    import numpy as np
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB"))
