#!/usr/bin/env bash
# Per-device memory of the CLIP / SigLIP ViT-B/16 train steps, compiled ahead of time on 8 fake CPU
# devices (`frx aot`). Rows of BENCHMARKS.md "CLIP and SigLIP: ahead-of-time memory".
# Usage: benchmarks/aot_memory_clip.sh [extra overrides]
set -euo pipefail
cd "$(dirname "$0")/.."
FRX=${FRX:-.venv/bin/frx}
# Exit status 1 is frx aot's "does not fit" (a result); anything else stops the script.
run() { echo "\$ frx aot $*"; /usr/bin/time -f "(%e s wall, %M KiB peak RSS)" "$FRX" aot "$@" || [ $? -eq 1 ]; echo; }
# 256 image-text pairs per device (open_clip's B/16 run used 192 per A100 40GB)
run clip_b16 --devices 8 --device_memory_gb 80 --batch_size 2048 "$@"
run clip_b16 --devices 8 --device_memory_gb 80 --batch_size 2048 --contrastive.loss_impl dense "$@"
run clip_b16 --devices 8 --device_memory_gb 80 --batch_size 2048 --model.remat True "$@"
run clip_b16 --devices 8 --device_memory_gb 40 --batch_size 2048 --model.remat True --mesh.fsdp 8 "$@"
run siglip_b16 --devices 8 --device_memory_gb 80 --batch_size 2048 "$@"
run siglip_b16 --devices 8 --device_memory_gb 80 --batch_size 2048 --contrastive.loss_impl gather "$@"
run siglip_b16 --devices 8 --device_memory_gb 80 --batch_size 2048 --contrastive.loss_impl dense "$@"
run siglip_b16 --devices 8 --device_memory_gb 80 --batch_size 4096 --model.remat True --mesh.fsdp 8 "$@"
# The full recipes' global batch of 32,768 on 64 devices (512 pairs each), where the loss's layout shows
run siglip_b16 --devices 64 --device_memory_gb 80 --model.remat True "$@"
run siglip_b16 --devices 64 --device_memory_gb 80 --model.remat True --contrastive.loss_impl gather "$@"
run siglip_b16 --devices 64 --device_memory_gb 80 --model.remat True --contrastive.loss_impl dense "$@"
run clip_b16 --devices 64 --device_memory_gb 80 --model.remat True "$@"
run clip_b16 --devices 64 --device_memory_gb 80 --model.remat True --contrastive.loss_impl dense "$@"
