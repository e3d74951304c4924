#!/usr/bin/env bash
# The GPU measurements behind BENCHMARKS.md, as one prepared call of the device tool:
#   run(command="bash benchmarks/gpu_suite.sh", timeout_s=480)
# It uses the image's own JAX, Flax and Optax (flax 0.12.8 does not import under jax 0.11).
# With FRX_GPU_WHEELS=1 it first installs wheels carried in .whl (carry=[".whl"]).
# Each configuration runs in its own process, so one failure does not stop the others.
set -u
OUT=${OUT:-/tmp/frx-gpu-out}
mkdir -p "$OUT"
rm -rf /tmp/site
if [ "${FRX_GPU_WHEELS:-0}" = 1 ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/device.txt"
python3 -c "import jax, flax, optax, torch, timm; print('jax', jax.__version__, jax.devices(), 'flax', flax.__version__, 'optax', optax.__version__, 'torch', torch.__version__, 'timm', timm.__version__)" 2>&1 | tee -a "$OUT/device.txt"

bench() {
  echo "== $*"
  timeout 200 python3 benchmarks/vit_train_step.py --warmup 5 --rounds 20 "$@" 2>&1 | grep -v -i warning | tail -4 | tee -a "$OUT/vit_train_step.jsonl"
}
for variant in S/16 B/16; do
  bench --variant $variant --batch 256 --dtype bfloat16 --attention cudnn --frameworks jax
  bench --variant $variant --batch 256 --dtype bfloat16 --attention xla --frameworks jax
  bench --variant $variant --batch 256 --dtype bfloat16 --frameworks torch
done
bench --variant S/16 --batch 256 --dtype float32 --attention xla --frameworks jax
bench --variant S/16 --batch 256 --dtype float32 --frameworks torch
