"""Weights & Biases as a mirror of the run folder (`--log.wandb PROJECT`): the resolved config once,
then every record that goes into metrics.jsonl. metrics.jsonl and TensorBoard stay the record.

- offline by default (`--log.wandb_mode offline`): W&B writes into RUN/wandb/ and nothing leaves the
  machine until `wandb sync RUN/wandb/offline-run-*`;
- one W&B run per run folder: its id is kept in RUN/wandb.json, and a resumed run continues it
  (`wandb.init(id=..., resume="allow")`; offline, each process writes its own folder for that id and
  `wandb sync` joins them);
- metrics are plotted against frx's step (`define_metric(step_metric="step")`), not W&B's own
  counter: a resumed run logs again the steps after its checkpoint, which W&B's counter, always
  increasing, would drop.
"""

from __future__ import annotations

import json
import os
import uuid

from frx import tracking
from frx.config import ConfigError, TrainConfig, to_dict

ID_FILE = "wandb.json"
STEP = "step"


def run_id(workdir: str) -> str | None:
    path = os.path.join(workdir, ID_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)["id"]


class WandbMirror:
    """Mirrors config and metrics of the run in `workdir` into a W&B run (process 0 only)."""

    def __init__(self, cfg: TrainConfig, workdir: str):
        try:
            import wandb
        except ImportError:
            raise ConfigError("--log.wandb needs the wandb package: pip install wandb (or drop --log.wandb)") from None
        os.makedirs(workdir, exist_ok=True)
        self.id = run_id(workdir) or uuid.uuid4().hex[:12]
        tracking.write_json_atomic(os.path.join(workdir, ID_FILE), {"id": self.id, "project": cfg.log.wandb})
        self.run = wandb.init(
            project=cfg.log.wandb, id=self.id, resume="allow", dir=workdir, mode=cfg.log.wandb_mode,
            name=os.path.basename(os.path.normpath(workdir)), config=to_dict(cfg),
            settings=wandb.Settings(console="off", silent=True),  # frx's own output stays as it is
        )
        self.run.define_metric(STEP)
        self.run.define_metric("*", step_metric=STEP)
        where = os.path.join(workdir, "wandb")
        print(f"W&B run {self.id} of project {cfg.log.wandb} ({cfg.log.wandb_mode})"
              + (f"; upload later with: wandb sync {where}/offline-run-*-{self.id}" if cfg.log.wandb_mode == "offline" else ""))

    def log(self, step: int, metrics: dict) -> None:
        self.run.log({STEP: int(step), **{k: v for k, v in metrics.items() if not isinstance(v, str)}})

    def close(self) -> None:
        self.run.finish()


def make_mirrors(cfg: TrainConfig, workdir: str, *, enabled: bool) -> list:
    """The mirrors a run's MetricsWriter feeds (none without --log.wandb, or off process 0)."""
    return [WandbMirror(cfg, workdir)] if enabled and cfg.log.wandb else []
