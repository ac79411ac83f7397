#!/usr/bin/env bash
# One-GPU check of the fine-tuning presets (issue 13): MusicGen-small with the CLIP conditioner,
# random weights of the real shapes, no downloads, a few steps with and without LoRA, steps/s and
# peak GPU memory next to the memory plan, one generation. Budget: <= 8 minutes on one GPU.
#   bash benchmarks/gpu_check.sh          # GPU
#   bash benchmarks/gpu_check.sh --cpu    # tiny dry run of the same script on CPU
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-.venv/bin/python}"
"$PY" -m od.doctor | head -3
timeout 480 "$PY" benchmarks/gpu_check.py "$@"
