#!/usr/bin/env bash
# The GPU measurements behind BENCHMARKS.md, as one prepared call of the device tool (under 8 minutes):
#   run(command="bash benchmarks/gpu_suite.sh", timeout_s=540)
# NOT RUN: prepared on a CPU-only machine (issue 12); no GPU was lent to that task.
#
# `frx bench` (compile once, 20 synchronised steps) for ViT-S/16 and ViT-B/16 at batch 256 in bfloat16:
# cuDNN attention without and with on-device augmentation (RandAugment(2, 10) + mixup 0.2, the
# preset's pp_train), ViT-B/16 once more with --model.scan for its compile time, and timm eager and torch.compile interleaved with frx
# (`--compare timm`, same model and optimizer, no augmentation on either side); then the host pipeline
# (benchmarks/host_pipeline.py, one core) and the check that the compiled RandAugment agrees with the
# op-by-op reference within +-1 on at most 0.1% of the values (benchmarks/device_augment.py --check-only). It ends with one table built from the JSON files.
# It uses the image's own JAX, Flax and Optax (flax 0.12.8 does not import under jax 0.11). With
# FRX_GPU_WHEELS=1 it first installs wheels carried in .whl (carry=[".whl"]): put simplejpeg and
# opencv-python-headless there for the host pipeline's compiled paths (without them it measures the
# Pillow + NumPy reference and says so). Each configuration runs in its own process, so one failure
# does not stop the others.
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
export PYTHONUNBUFFERED=1 FRX_COMPILATION_CACHE=off  # compile times are measured cold
# frx's window decoder (frx/data/_jpeg_crop.c) is built by pip install; without pip here, compile it in
# place where the image has gcc and the libjpeg headers (fast_image.backends() below says which path ran).
gcc -O2 -shared -fPIC $(python3-config --includes) frx/data/_jpeg_crop.c -ljpeg \
  -o "frx/data/_jpeg_crop$(python3-config --extension-suffix)" 2>/dev/null || echo "window decoder not compiled"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/device.txt"
python3 -c "import jax, flax, optax, torch, timm; print('jax', jax.__version__, jax.devices(), 'flax', flax.__version__, 'optax', optax.__version__, 'torch', torch.__version__, 'timm', timm.__version__)" 2>&1 | tee -a "$OUT/device.txt"

NOAUG=(--data.pp_train "decode|inception_crop(224)|flip_lr|value_range(-1, 1)" --data.mixup_p 0)
COMMON=(--batch_size 256 --model.rep_size 0 --model.dtype bfloat16 --steps 20 --warmup 3)
fb() {  # fb NAME TIMEOUT PRESET ARGS...: one `frx bench` in its own process, numbers to $OUT/bench_NAME.json
  local name=$1 limit=$2; shift 2
  echo "== $name: frx bench $*"
  timeout "$limit" python3 -m frx bench "$@" --json "$OUT/bench_$name.json" 2>&1 | grep -v -i warning | tail -14
}
# --compare runs JAX and PyTorch in one process: JAX must not preallocate 75% of the GPU, and both
# steps' memory must fit at once (ViT-B/16 at batch 256 in bf16 needs an H200, kind nvidia-h200).
(export XLA_PYTHON_CLIENT_PREALLOCATE=false
 fb S16_cudnn_noaug 170 vit_s16_i1k "${COMMON[@]}" --model.attention cudnn "${NOAUG[@]}" --compare timm)
fb S16_cudnn_aug 60 vit_s16_i1k "${COMMON[@]}" --model.attention cudnn
(export XLA_PYTHON_CLIENT_PREALLOCATE=false
 fb B16_cudnn_noaug 170 vit_b16_i1k "${COMMON[@]}" --model.attention cudnn "${NOAUG[@]}" --compare timm)
fb B16_cudnn_aug 60 vit_b16_i1k "${COMMON[@]}" --model.attention cudnn
# compile time of the blocks as one lax.scan (--model.scan) against the unrolled B16_cudnn_aug above
fb B16_cudnn_aug_scan 90 vit_b16_i1k "${COMMON[@]}" --model.attention cudnn --model.scan True --steps 5 --warmup 1

echo "== compiled RandAugment vs the op-by-op reference (XLA:GPU fuses multiply-adds)"
(cd benchmarks && timeout 150 python3 device_augment.py --check-only 2>&1 | grep -v -i warning | tail -1 | tee "$OUT/randaug_exactness.txt")

echo "== host pipeline (one core)"
python3 -c "from frx.data import fast_image; print('host paths:', fast_image.backends())" | tee "$OUT/host_backends.txt"
(cd benchmarks && timeout 20 python3 host_pipeline.py --make-images /tmp/frx_jpegs >/dev/null &&
  timeout 60 python3 host_pipeline.py --images /tmp/frx_jpegs --passes 2 --core 0 2>&1 | tail -12 | tee "$OUT/host_pipeline.txt")

python3 - "$OUT" <<'PY'
import glob, json, os, sys
rows = []
for path in sorted(glob.glob(os.path.join(sys.argv[1], "bench_*.json"))):
    v = json.load(open(path))
    name = os.path.basename(path)[6:-5]
    timm = "".join(f" | {v[k]:,.0f} ({v['frx_over_' + k[:-10]]:.2f}x)" if k in v else " | -"
                   for k in ("timm eager_img_per_s", "timm torch.compile_img_per_s"))
    rows.append(f"| {name} | {v['img_per_s']:,.0f} | {v['step_s'] * 1e3:.1f} | {v['compile_s']:.1f} | "
                f"{v.get('mfu', 0):.1%} | {v['peak_memory_bytes'] / 2**30:.2f}{timm} |")
print("| config (batch 256, bf16) | frx img/s | step ms | compile s | MFU | peak GiB | timm eager (frx/timm) | timm torch.compile (frx/timm) |")
print("|---|---|---|---|---|---|---|---|")
print("\n".join(rows))
PY
