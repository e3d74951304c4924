"""Importing timm in tests (the timm export tests; torch and timm are installed by `./dev`).

timm imports torchvision when it is imported (timm/layers/create_norm.py: `from torchvision.ops.misc
import FrozenBatchNorm2d`, timm/data/transforms.py, ...) although its VisionTransformer uses only
torch, and PyPI's torchvision does not load beside the CPU build of torch that these tests use
(../shared/spec/environment_notes.md section 6). Where no torchvision is installed, the inert stub in
benchmarks/stubs/torchvision stands in: it is on sys.path only while timm is imported, so nothing
else can pick it up by accident, and a real torchvision is always preferred.
"""

import importlib.util
import os
import sys

import pytest

import frx

STUBS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(frx.__file__))), "benchmarks", "stubs")


def import_timm_vit():
    """(torch, timm.models.vision_transformer), or a skip naming what is missing."""
    torch = pytest.importorskip("torch", reason="torch is not installed; ./dev installs torch==2.13.0 (CPU) for these tests")
    if importlib.util.find_spec("timm") is None:
        pytest.skip("timm is not installed; ./dev installs it with pip install --no-deps timm")
    if "timm" not in sys.modules and importlib.util.find_spec("torchvision") is None:
        sys.path.insert(0, STUBS)
        try:
            import timm  # noqa: F401
        finally:
            sys.path.remove(STUBS)
    import timm.models.vision_transformer as vit

    return torch, vit
