#!/usr/bin/env bash
# Per-device memory of the ViT-B/16 TreeOfLife-10M train step (preset vit_b16_tol10m: 454,104 classes,
# batch 4096 in 2 micro-batches, bfloat16, taxonomic loss) with a dense, chunked, class-sharded or
# sampled head, compiled ahead of time on 8 fake CPU devices (`frx aot`). Rows of BENCHMARKS.md
# "Extreme classification: ahead-of-time memory". Usage: benchmarks/extreme_aot.sh [extra overrides]
set -euo pipefail
cd "$(dirname "$0")/.."
FRX=${FRX:-.venv/bin/frx}
# Exit status 1 is frx aot's "does not fit" (a result); anything else stops the script.
run() { echo "\$ frx aot $*"; /usr/bin/time -f "(%e s wall, %M KiB peak RSS)" "$FRX" aot "$@" || [ $? -eq 1 ]; echo; }
A="vit_b16_tol10m --devices 8 --device_memory_gb 80"  # the preset: chunked head, fsdp over all devices, grad_accum 2
run $A --head.kind dense --mesh.data 8 --mesh.fsdp 1 "$@"
run $A --head.kind dense "$@"
run $A --head.kind chunked --mesh.data 8 --mesh.fsdp 1 "$@"
run $A "$@"
run $A --grad_accum 1 "$@"
run $A --grad_accum 4 "$@"
run $A --head.kind sharded --mesh.data 2 --mesh.tensor 4 "$@"
run $A --head.kind sharded --mesh.fsdp 2 --mesh.tensor 4 "$@"
run $A --head.kind sharded --mesh.tensor 8 "$@"
run $A --head.kind sharded --mesh.rules classes "$@"
run $A --head.kind sharded --mesh.rules classes --mesh.data 8 --mesh.fsdp 1 "$@"
run $A --head.kind sampled --head.objective flat --head.sampler log_uniform "$@"
run $A --head.kind dense --head.objective flat "$@"
