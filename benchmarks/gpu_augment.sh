#!/usr/bin/env bash
# Device-side RandAugment + mixup cost on one GPU, as one prepared call of the device tool:
#   run(command="bash benchmarks/gpu_augment.sh", timeout_s=420)
# Uses the image's own JAX/Flax/Optax like gpu_suite.sh. Each configuration runs in its own process.
set -u
OUT=${OUT:-/tmp/frx-gpu-out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/device.txt"
python3 -c "import jax, flax, optax; print('jax', jax.__version__, jax.devices(), 'flax', flax.__version__)" 2>&1 | tee -a "$OUT/device.txt"
for attention in cudnn xla; do
  echo "== batch 256 bfloat16 attention $attention"
  timeout 190 python3 benchmarks/device_augment.py --batch 256 --steps 20 --dtype bfloat16 --attention $attention \
    2>&1 | grep -v -i warning | tail -3 | tee -a "$OUT/device_augment.jsonl"
done
