#!/usr/bin/env bash
# A second venv with PyTorch (CPU), timm and frx's JAX stack, for the side-by-side benchmarks.
# `pip install timm` would pull torchvision and a CUDA torch build, so timm comes without deps.
set -euo pipefail
venv=${1:-/tmp/frx-torch-venv}
python3 -m venv "$venv"
"$venv/bin/pip" install -q torch==2.13.0
"$venv/bin/pip" install -q --no-deps timm
"$venv/bin/pip" install -q huggingface_hub safetensors pyyaml pillow torch==2.13.0
"$venv/bin/pip" install -q jax==0.10.2 flax==0.12.8 optax==0.2.8
echo "run: PYTHONPATH=$(cd "$(dirname "$0")" && pwd)/stubs $venv/bin/python benchmarks/vit_train_step.py"
