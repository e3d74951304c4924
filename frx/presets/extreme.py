"""Extreme classification: a small CPU demo with 14,400 classes, and a ViT-B/16 baseline on TreeOfLife-10M.

    frx train extreme_demo      # embedded 7-rank taxonomy, 14,400 classes, 32x32: 4 min on 2 CPU cores
        # (2026-12-07, AMD EPYC), 50.0% class top-1, by rank: phylum 94.7%, order 79.1%,
        # family 60.7%, genus 59.9%, species 55.5% (chance per class 0.007%)
    frx train vit_b16_tol10m --data.root '/data/tol10m/train/shard-{000000..000163}.tar' \\
        --data.val_root '/data/tol10m/val/shard-{000000..000005}.tar' --data.catalog /data/tol10m/catalog.csv \\
        --model.num_classes N            # N = the taxa the run's label index finds (the first start says it)

vit_b16_tol10m has not been run on the real data; its memory (27.7 GiB per device on 8 devices,
`frx aot`) and the demo's numbers against the flat and sampled softmax are in BENCHMARKS.md;
docs/extreme.md says which head to choose when.
"""

from __future__ import annotations

from frx.config import (
    CheckpointConfig,
    DataConfig,
    EvalConfig,
    HeadConfig,
    LogConfig,
    MeshConfig,
    OptimConfig,
    ScheduleConfig,
    TaxaConfig,
    TrainConfig,
    ViTConfig,
)


def extreme_demo() -> TrainConfig:
    """Tiny ViT, 14,400 classes of the embedded 7-rank taxonomy (Zipf frequencies), taxonomic loss, CPU."""
    taxa = TaxaConfig()
    return TrainConfig(
        name="extreme_demo",
        task="extreme",
        batch_size=128,
        total_steps=2000,
        model=ViTConfig(variant="Ti/8", width=96, depth=4, num_heads=4, image_size=32,
                        num_classes=taxa.num_species + taxa.num_families),
        head=HeadConfig(kind="chunked", objective="taxonomic", chunk_size=4096),
        data=DataConfig(source="taxa", taxa=taxa, pp_train="decode|value_range(-1,1)", pp_eval="decode|value_range(-1,1)"),
        optim=OptimConfig(lr=2e-3, wd=1e-4),
        schedule=ScheduleConfig(decay="cosine", warmup_steps=100),
        ckpt=CheckpointConfig(every_steps=500),
        eval=EvalConfig(every_steps=500, splits=("val",)),
        log=LogConfig(every_steps=50),
    )


# TreeOfLife-10M: ~454K taxa (BioCLIP's count); the exact number is the run's label index size, which
# the first start reports if it differs. 454,104 is a multiple of 8, so a sharded head splits evenly.
TOL_CLASSES = 454_104
TOL_TRAIN = "decode_jpeg_and_inception_crop(224)|flip_lr|randaug(2, 10)|value_range(-1, 1)"
TOL_EVAL = "decode|resize_small(256)|central_crop(224)|value_range(-1, 1)"


def vit_b16_tol10m() -> TrainConfig:
    """ViT-B/16 from scratch on TreeOfLife-10M shards: taxonomic softmax over ~454K taxa, big_vision's i21k recipe."""
    return TrainConfig(
        name="vit_b16_tol10m",
        task="extreme",
        batch_size=4096,
        total_epochs=90,
        grad_accum=2,
        model=ViTConfig(variant="B/16", image_size=224, num_classes=TOL_CLASSES, pool="gap", posemb="sincos2d",
                        dtype="bfloat16"),
        head=HeadConfig(kind="chunked", objective="taxonomic", chunk_size=32_768),
        data=DataConfig(source="tol", minival_fraction=0.001, pp_train=TOL_TRAIN, pp_eval=TOL_EVAL, mixup_p=0.2,
                        threads=16),
        optim=OptimConfig(name="adam", lr=1e-3, wd=1e-4, mu_dtype="bfloat16", grad_clip_norm=1.0),
        schedule=ScheduleConfig(decay="cosine", warmup_steps=10_000),
        mesh=MeshConfig(data=1, fsdp=-1),
        ckpt=CheckpointConfig(every_steps=1000),
        eval=EvalConfig(every_steps=5000, batch_size=1024, splits=("val", "minival")),
        log=LogConfig(every_steps=50),
    )
