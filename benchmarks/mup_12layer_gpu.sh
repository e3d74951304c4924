#!/usr/bin/env bash
# The 12-layer muP / u-muP transfer experiment (learning rate x init scale, widths 128/256/384, SP vs muP
# vs u-muP) on one GPU, as one prepared call of the device tool, under 8 minutes of device time:
#   run(command="bash benchmarks/mup_12layer_gpu.sh", timeout_s=480)
# NOT RUN YET: no GPU was lent to the session that wrote it (docs/mup.md, "The 12-layer experiment").
# configs/sweeps/mup_12layer_gpu.toml (SP, muP: 54 runs) and mup_12layer_gpu_umup.toml (27 runs), 12
# `frx train` processes at once sharing the GPU (no preallocation). Each sweep is resumable: a second call
# continues where the first stopped (the runs folder must be carried back, or rerun from scratch).
# Uses the image's own JAX, Flax and Optax (as benchmarks/gpu_suite.sh); FRX_GPU_WHEELS=1 installs .whl/*.
set -u
OUT=${OUT:-/tmp/frx-gpu-out}
mkdir -p "$OUT"
if [ "${FRX_GPU_WHEELS:-0}" = 1 ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/device.txt"
lscpu | grep -E "Model name|^CPU\(s\)" | tee -a "$OUT/device.txt"
date -u | tee -a "$OUT/device.txt"
start=$(date +%s)
# 270 s for SP and muP, the rest for u-muP; a sweep stopped by its timeout keeps its finished runs.
timeout 270 python3 -m frx sweep configs/sweeps/mup_12layer_gpu.toml --workdir "$OUT/mup_12layer_gpu" 2>&1 | tail -60
left=$(( 420 - ($(date +%s) - start) ))
timeout $(( left > 30 ? left : 30 )) python3 -m frx sweep configs/sweeps/mup_12layer_gpu_umup.toml \
  --workdir "$OUT/mup_12layer_gpu_umup" 2>&1 | tail -30
for sweep in mup_12layer_gpu mup_12layer_gpu_umup; do
  python3 -m frx plot "$OUT/$sweep" 2>&1 | tail -40
  rm -rf "$OUT/$sweep/runs"/*/checkpoints  # keep metrics and results, not weights
done
echo "wall: $(( $(date +%s) - start )) s"
