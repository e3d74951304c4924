#!/usr/bin/env bash
# Per-device memory of the train step, compiled ahead of time on 8 fake CPU devices (`frx aot`).
# Rows of BENCHMARKS.md "Scale-out: ahead-of-time memory". Usage: benchmarks/aot_memory.sh [extra overrides]
set -euo pipefail
cd "$(dirname "$0")/.."
FRX=${FRX:-.venv/bin/frx}
# Exit status 1 is frx aot's "does not fit" (a result); anything else stops the script.
run() { echo "\$ frx aot $*"; /usr/bin/time -f "(%e s wall, %M KiB peak RSS)" "$FRX" aot "$@" || [ $? -eq 1 ]; echo; }
run vit_b16_i1k --devices 8 --device_memory_gb 80 "$@"
run vit_b16_i1k --devices 8 --device_memory_gb 80 --model.dtype bfloat16 "$@"
run vit_b16_i1k --devices 8 --device_memory_gb 80 --mesh.fsdp 8 "$@"
run vit_b16_i1k --devices 8 --device_memory_gb 80 --model.variant L/16 "$@"
run vit_b16_i1k --devices 8 --device_memory_gb 80 --model.variant L/16 --mesh.fsdp 8 "$@"
run vit_b16_i1k --devices 8 --device_memory_gb 40 --model.variant L/16 --mesh.fsdp 8 --model.dtype bfloat16 "$@"
run vit_b16_i1k --devices 8 --device_memory_gb 80 --model.variant L/16 --mesh.fsdp 4 --mesh.tensor 2 "$@"
run vit_b16_i1k --devices 8 --device_memory_gb 80 --model.variant L/16 --mesh.fsdp 8 --grad_accum 2 "$@"
run vit_b16_i1k --devices 8 --device_memory_gb 40 --model.variant L/16 --mesh.fsdp 8 --model.dtype bfloat16 --grad_accum 4 "$@"
