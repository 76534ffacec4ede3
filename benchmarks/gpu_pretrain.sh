#!/usr/bin/env bash
# GPU pretraining check: the micro preset (or PRESET) in bf16 on ONE GPU for <= 10 minutes, through
# the same stage as `lrl pretrain` (Ray Train, nccl, DeepSpeed ZeRO-2 by default), recording tokens/s
# and MFU against the bf16 matmul peak measured on that GPU at start (lrl.train.pretrain_metrics).
#
#   bash benchmarks/gpu_pretrain.sh            # 8 minutes of training, ug + wo
#   MINUTES=3 ENGINE=torch PRESET=small bash benchmarks/gpu_pretrain.sh
#
# Needs: a CUDA build of torch, ../shared/data/mono (or LRL_DATA_ROOT). Output: $OUT (default
# /tmp/lrl-gpu-pretrain) with the model folder, metrics.json and gpu_pretrain.log.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${MINUTES:-8}"
ENGINE="${ENGINE:-deepspeed}"
PRESET="${PRESET:-micro}"
BATCH="${BATCH:-256}"
OUT="${OUT:-/tmp/lrl-gpu-pretrain}"
mkdir -p "$OUT"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible')"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
# The stage caps training at MINUTES; start-up (tokenizer, Ray, DeepSpeed) comes on top, so the
# whole script stays under 10 minutes with the default 8.
timeout $(( (${MINUTES%.*} + 2) * 60 )) python benchmarks/pretrain_real.py --gpu --engine "$ENGINE" \
    --preset "$PRESET" --batch "$BATCH" --minutes "$MINUTES" --out "$OUT" 2>&1 | tee "$OUT/gpu_pretrain.log"
grep -E "tokens/s|MFU" "$OUT/gpu_pretrain.log" | head -3
