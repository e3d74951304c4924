"""`frx bench`: its numbers for classification and the contrastive task, --input, --compare timm."""

import json

import pytest

from frx import cli, flops
from frx.config import ConfigError
from tests.support.configs import TINY_CLI, TINY_CONTRASTIVE_CLI


def test_bench_reports_throughput_flops_mfu_memory_and_the_input_pipeline(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert cli.cmd_bench(["demo", *TINY_CLI, "--data.workers", "auto", "--steps", "2", "--warmup", "1", "--input",
                          "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    labels = ("compile", "step", "throughput", "model FLOPs/step", "MFU", "peak memory", "end to end", "input-bound",
              "data.workers auto -> 0 (CPU backend")
    for label in labels:
        assert label in printed
    values = json.loads(out.read_text())
    cfg = cli.parse_train_args("demo", TINY_CLI)
    assert values["model_flops"] == flops.train_step_flops(cfg)
    assert 0.9 < values["xla_flops"] / values["model_flops"] < 1.6  # a tiny model: elementwise work weighs more
    assert values["img_per_s"] == pytest.approx(16 / values["step_s"])
    assert 0 < values["mfu"] == pytest.approx(values["model_flops"] / values["step_s"] / values["peak_flops"])
    assert values["peak_memory_bytes"] > 0 and values["compile_s"] > 0
    assert values["host_img_per_s"] > 0 and values["end_to_end_img_per_s"] > 0
    assert values["input_bound"] == (values["host_img_per_s"] < values["img_per_s"])
    assert values["data_workers"] == 0


def test_bench_times_the_contrastive_task(tmp_path):
    out = tmp_path / "bench.json"
    assert cli.cmd_bench(["clip_demo", *TINY_CONTRASTIVE_CLI, "--steps", "1", "--warmup", "0", "--json", str(out)]) == 0
    values = json.loads(out.read_text())
    assert values["model_flops"] == flops.train_step_flops(cli.parse_train_args("clip_demo", TINY_CONTRASTIVE_CLI))
    assert values["img_per_s"] > 0


def test_compare_timm_refuses_a_two_tower_model_in_one_line():
    with pytest.raises(ConfigError, match="compares classification ViTs"):
        cli.cmd_bench(["clip_demo", *TINY_CONTRASTIVE_CLI, "--compare", "timm"])


def test_bench_refuses_zero_steps():
    with pytest.raises(SystemExit):
        cli.cmd_bench(["demo", *TINY_CLI, "--steps", "0"])


@pytest.mark.slow
def test_compare_timm_times_eager_and_compiled_timm_interleaved(tmp_path, capsys, monkeypatch):
    import functools

    from tests.support.timm_support import import_timm_vit

    torch, _ = import_timm_vit()
    # dynamo's eager backend: the torch.compile path without minutes of inductor code generation
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    out = tmp_path / "bench.json"
    assert cli.cmd_bench(["demo", *TINY_CLI, "--steps", "2", "--warmup", "1", "--compare", "timm",
                          "--json", str(out)]) == 0
    values = json.loads(out.read_text())
    for name in ("timm eager", "timm torch.compile"):
        assert values[f"{name}_img_per_s"] > 0
        assert values[f"frx_over_{name}"] == pytest.approx(values["img_per_s"] / values[f"{name}_img_per_s"])
    assert "frx / timm torch.compile" in capsys.readouterr().out
