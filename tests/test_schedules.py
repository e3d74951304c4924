"""Learning-rate multipliers and step rounding with big_vision semantics."""

import math

import pytest

from frx import schedules
from frx.config import ConfigError, ScheduleConfig


def test_first_update_uses_zero_lr_and_warmup_reaches_one():
    m = schedules.make(ScheduleConfig(decay="cosine", warmup_steps=100), total_steps=1000, warmup_steps=100)
    assert float(m(0)) == 0.0
    assert float(m(50)) == pytest.approx(0.5)
    assert float(m(100)) == pytest.approx(1.0)


def test_cosine_decays_to_zero_at_the_end():
    m = schedules.make(ScheduleConfig(decay="cosine"), total_steps=1100, warmup_steps=100)
    assert float(m(600)) == pytest.approx(0.5, abs=1e-6)  # halfway through the decay
    assert float(m(1100)) == pytest.approx(0.0, abs=1e-7)
    assert float(m(1099)) == pytest.approx(0.5 * (1 + math.cos(math.pi * 999 / 1000)), rel=1e-2)  # float32 cos near pi
    assert float(m(1099)) > 0  # the last update still gets a tiny non-zero lr


def test_linear_and_rsqrt_and_cooldown():
    lin = schedules.make(ScheduleConfig(decay="linear", end=0.1), total_steps=110, warmup_steps=10)
    assert float(lin(60)) == pytest.approx(0.1 + 0.9 * 0.5)
    rsqrt = schedules.make(ScheduleConfig(decay="rsqrt", timescale=100), total_steps=1000, warmup_steps=10)
    assert float(rsqrt(5)) == pytest.approx(0.5)  # warmup * 1/sqrt(1 + 0)
    assert float(rsqrt(310)) == pytest.approx(1 / math.sqrt(1 + 300 / 100))
    cool = schedules.make(ScheduleConfig(decay="constant", cooldown_steps=10), total_steps=100, warmup_steps=0)
    assert float(cool(50)) == 1.0 and float(cool(95)) == pytest.approx(0.5)


def test_epochs_round_like_big_vision():
    # 90 epochs of train[:99%] (1,268,355 images) at batch 1024 -> 111,477 steps; 100% -> 112,603.
    assert schedules.to_steps(steps=None, epochs=90, examples=None, batch_size=1024, data_size=1_268_355) == 111_477
    assert schedules.to_steps(steps=None, epochs=90, examples=None, batch_size=1024, data_size=1_281_167) == 112_603
    # Python's round: half to even; at least one step.
    assert schedules.to_steps(steps=None, epochs=None, examples=2560, batch_size=1024, data_size=1) == 2
    assert schedules.to_steps(steps=None, epochs=None, examples=3584, batch_size=1024, data_size=1) == 4
    assert schedules.to_steps(steps=None, epochs=0.001, examples=None, batch_size=1024, data_size=10) == 1
    assert schedules.to_steps(steps=7, epochs=None, examples=None, batch_size=1024, data_size=10) == 7


def test_warmup_longer_than_training_is_refused():
    with pytest.raises(ConfigError, match="warmup .* must be shorter than training"):
        schedules.make(ScheduleConfig(), total_steps=100, warmup_steps=10_000)
