"""frx: train vision models from scratch in JAX.

Stable Python API:
    frx.presets.get(name) -> TrainConfig          frozen config of a named recipe
    frx.presets.names() -> list[str]
    frx.models.make(model_config, seed=0)        NNX ViT; call on float images (B, H, W, 3) in [-1, 1]
    frx.models.count_params(module) -> int
    frx.train.train(config) -> dict               train or resume; returns the final eval metrics
    frx.mup.make_model(model_config, mup_config, seed)   the model under SP or muP (config.mup)
"""

__version__ = "0.1.0"
