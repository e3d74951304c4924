"""frx.hardware: bf16 matrix units by device, datasheet peaks, the measured CPU peak."""

import types

import pytest

from frx import hardware


@pytest.mark.parametrize("kind, tflops", [
    ("NVIDIA H200", 989), ("NVIDIA H100 80GB HBM3", 989), ("NVIDIA H100 PCIe", 756), ("NVIDIA A100-SXM4-80GB", 312),
    ("TPU v5 lite", 197), ("TPU v4", 275)])
def test_datasheet_peaks(kind, tflops):
    assert hardware.datasheet_peak_flops(kind) == tflops * 1e12


def test_unknown_devices_have_no_datasheet_peak():
    assert hardware.datasheet_peak_flops("Tesla T4 (something new)") is None


def test_bf16_matrix_units(monkeypatch):
    gpu = lambda capability: types.SimpleNamespace(platform="gpu", compute_capability=capability)  # noqa: E731
    assert hardware.has_bf16_matrix_units(gpu("9.0")) and hardware.has_bf16_matrix_units(gpu("8.0"))
    assert not hardware.has_bf16_matrix_units(gpu("7.0"))  # V100: fp16 tensor cores only
    assert hardware.has_bf16_matrix_units(types.SimpleNamespace(platform="tpu"))
    cpu = types.SimpleNamespace(platform="cpu")
    for flags, expected in ((["avx2", "avx512f"], False), (["avx512f", "avx512_bf16"], True), (["amx_bf16"], True)):
        monkeypatch.setattr(hardware, "cpu_info", lambda flags=flags: {"model": "x", "flags": flags, "cores": 2})
        assert hardware.has_bf16_matrix_units(cpu) == expected


def test_cpu_info_reads_this_machine():
    info = hardware.cpu_info()
    assert info["cores"] >= 1 and set(info["flags"]) <= set(hardware.REPORTED_FLAGS)
    assert info["model"] in hardware.describe_cpu()


def test_measured_cpu_peak_is_positive_and_below_a_generous_bound():
    flops_per_s = hardware.measured_matmul_flops("float32", size=256, repeats=2)
    assert 1e8 < flops_per_s < 1e14
