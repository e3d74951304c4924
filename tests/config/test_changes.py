"""Which settings a resumed run may change (frx.config.changes)."""

import dataclasses

from frx import presets
from frx.config import FewshotConfig, to_dict
from frx.config.changes import computation_changes


def test_evaluation_only_settings_are_free_and_the_objective_is_not():
    old = presets.get("siglip_demo")
    new = dataclasses.replace(
        old, eval=dataclasses.replace(old.eval, every_steps=7), fewshot=FewshotConfig(source="digits"),
        contrastive=dataclasses.replace(old.contrastive, zeroshot_templates="photo"))
    assert computation_changes(to_dict(old), to_dict(new)) == {}
    other_loss = dataclasses.replace(new, contrastive=dataclasses.replace(new.contrastive, loss="clip"),
                                     head=dataclasses.replace(new.head, chunk_size=1024))
    assert computation_changes(to_dict(old), to_dict(other_loss)) == {
        "contrastive.loss": ("siglip", "clip"), "head.chunk_size": (8192, 1024)}
