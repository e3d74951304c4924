"""One tiny trained run folder shared by the interop tests (export, init.from, runs, report, W&B),
trained once per test process: training is the slow part. It logs to a stand-in `wandb` module
that records what the loop sends it (tests/test_wandb.py checks that against metrics.jsonl; the
real package is tested offline there too)."""

import dataclasses
import sys
import types

from tests.support.configs import tiny_config

_CACHE: dict = {}


class FakeRun:
    def __init__(self, **kwargs):
        self.init_kwargs, self.defined, self.logged, self.finished = kwargs, [], [], False

    def define_metric(self, name, step_metric=None):
        self.defined.append((name, step_metric))

    def log(self, data):
        self.logged.append(dict(data))

    def finish(self):
        self.finished = True


def fake_wandb() -> types.ModuleType:
    module = types.ModuleType("wandb")
    module.runs = []
    module.Settings = lambda **kwargs: kwargs

    def init(**kwargs):
        module.runs.append(FakeRun(**kwargs))
        return module.runs[-1]

    module.init = init
    return module


def trained_run(tmp_path_factory):
    """(run folder, the stand-in wandb module it logged to): 6 steps, checkpoints at 3 and 6."""
    if "run" not in _CACHE:
        from frx.train import train

        folder = tmp_path_factory.mktemp("trained") / "run"
        cfg = tiny_config(folder)
        cfg = dataclasses.replace(cfg, log=dataclasses.replace(cfg.log, wandb="frx-tests"))
        wandb = fake_wandb()
        # Only this one entry is swapped (mock.patch.dict would also drop every module imported meanwhile).
        real = sys.modules.get("wandb")
        sys.modules["wandb"] = wandb
        try:
            train(cfg)
        finally:
            if real is None:
                del sys.modules["wandb"]
            else:
                sys.modules["wandb"] = real
        _CACHE["run"] = (folder, wandb)
    return _CACHE["run"]
