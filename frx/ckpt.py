"""Checkpoints: parameters, optimizer state, step and RNG, plus the data-iterator position and a
fingerprint of the model config, written by Orbax (async, atomic: a checkpoint only appears under
its final name once complete). A run resumes from the latest complete checkpoint in its folder.
"""

from __future__ import annotations

import os

import orbax.checkpoint as ocp

from frx.config import CheckpointConfig, ConfigError


class Checkpointer:
    def __init__(self, workdir: str, cfg: CheckpointConfig):
        self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
        options = ocp.CheckpointManagerOptions(
            max_to_keep=cfg.keep,
            keep_period=cfg.keep_every_steps or None,
            enable_async_checkpointing=cfg.async_save,
            create=True,
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, *, data_state: dict, meta: dict) -> None:
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=ocp.args.JsonSave(data_state),
            meta=ocp.args.JsonSave(meta),
        )
        self.manager.save(step, args=args, force=True)

    def restore(self, step: int, abstract_state, *, meta: dict):
        """Restores (state, data_state) into the shardings of `abstract_state`.

        Refuses a checkpoint whose model config differs from `meta["model"]`: restoring it would
        fail on shapes at best and silently train another model at worst.
        """
        saved_meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        if saved_meta.get("model") != meta["model"]:
            changed = sorted(k for k in meta["model"] if saved_meta.get("model", {}).get(k) != meta["model"][k])
            raise ConfigError(
                f"checkpoint in {self.directory} was written for a different model (fields {changed} differ); "
                "use a new --workdir or the original model settings"
            )
        restored = self.manager.restore(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()),
        )
        return restored["state"], restored["data"]

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
