"""The head section: every bad setting refused with one line, and the sections round-trip through JSON."""

import dataclasses

import pytest

from frx import presets
from frx.config import ConfigError, HeadConfig, TrainConfig, from_dict, to_dict, validate


@pytest.mark.parametrize("changes, message", [
    (dict(num_classes=-1), "head.num_classes must be >= 0"),
    (dict(chunk_size=-8), "head.chunk_size must be >= 0"),
    (dict(num_sampled=0), "head.num_sampled must be positive"),
    (dict(rank_weights=(1.0,) * 6), "head.rank_weights needs 7 weights"),
    (dict(rank_weights=(0.0,) * 7), "head.rank_weights must be >= 0 with one positive"),
    (dict(rank_weights=(1.0,) * 6 + (float("nan"),)), "head.rank_weights must be >= 0 with one positive"),
    (dict(distortion=-1.0), "head.distortion must be >= 0"),
    (dict(kind="softmax"), "head.kind must be one of dense, chunked, sharded, sampled"),
])
def test_bad_head_settings_give_one_line_errors(changes, message):
    cfg = dataclasses.replace(presets.get("extreme_demo"), head=dataclasses.replace(HeadConfig(), **changes))
    with pytest.raises(ConfigError, match=message) as info:
        validate(cfg)
    assert "\n" not in str(info.value)


def test_an_old_run_folder_without_a_head_section_reads_the_defaults():
    saved = to_dict(presets.get("demo"))
    del saved["head"]
    assert from_dict(TrainConfig, saved).head == HeadConfig()
