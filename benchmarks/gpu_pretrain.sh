#!/usr/bin/env bash
# GPU pretraining check: the micro preset (or PRESET) in bf16 on ONE GPU for <= 10 minutes, through
# the same stage as `lrl pretrain` (Ray Train, nccl, DeepSpeed ZeRO-2 by default), recording tokens/s
# and MFU against the bf16 matmul peak measured on that GPU at start (lrl.train.pretrain_metrics).
#
#   bash benchmarks/gpu_pretrain.sh            # 5 minutes of training, ug + wo
#   MINUTES=3 ENGINE=torch PRESET=small bash benchmarks/gpu_pretrain.sh
#
# Needs: a CUDA build of torch, ../shared/data/mono (or LRL_DATA_ROOT). Output: $RUN (default
# /tmp/lrl-gpu-pretrain) with the model folder, metrics.json and gpu_pretrain.log; when $OUT is set
# (the device tool's folder that comes back: at most 8 files), the log, metrics.json and the
# stage's manifest.json are copied there.
#
# On the lent GPU machine (no Ray, DeepSpeed or pydantic there, no network, and the data beside the
# checkout does not travel): first, here, `python benchmarks/gpu_carry.py` (writes .gpu/, ~40 MiB),
# then run(command="bash benchmarks/gpu_pretrain.sh", carry=[".gpu"], timeout_s=600); this script
# unpacks .gpu/ into /tmp when Ray is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${MINUTES:-5}"
MAX_LINES="${MAX_LINES:-}"   # lines per language; empty: all
ENGINE="${ENGINE:-deepspeed}"
PRESET="${PRESET:-micro}"
BATCH="${BATCH:-256}"
RUN="${RUN:-/tmp/lrl-gpu-pretrain}"
mkdir -p "$RUN"
# What comes back ($OUT) is copied on every exit: with `set -e` a failed or timed-out run (the
# likely outcome of a first try on a new machine) ended the script before the copy, and its log
# and metrics, the things needed to see why, stayed on a machine that is then given back.
bring_back() {
    [ -n "${OUT:-}" ] || return 0
    cp "$RUN/gpu_pretrain.log" "$OUT/" 2>/dev/null || true
    for f in metrics.json manifest.json; do
        found=$(ls "$RUN"/pretrain-*/"$f" 2>/dev/null | head -1) || true
        [ -z "$found" ] || cp "$found" "$OUT/$f"
    done
}
trap bring_back EXIT
if [ -d .gpu ] && ! python3 -c "import ray" 2>/dev/null; then
    python3 benchmarks/gpu_carry.py --out .gpu --unpack /tmp/lrl-site --data-out /tmp/lrl-data
    # Ray's workers inherit PYTHONPATH: they import Ray, DeepSpeed and lrl from here too.
    export PYTHONPATH="/tmp/lrl-site:$PWD/platform${PYTHONPATH:+:$PYTHONPATH}" LRL_DATA_ROOT=/tmp/lrl-data
fi
export PYTHONUNBUFFERED=1
python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible')"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
# The stage caps training at MINUTES; start-up (tokenizer, Ray, packing, DeepSpeed) and the final
# held-out evaluation come on top, so the whole script stays under 10 minutes with the default 5
# (and inside one device call of 600 s).
timeout $(( (${MINUTES%.*} + 3) * 60 )) python3 benchmarks/pretrain_real.py --gpu --engine "$ENGINE" \
    --preset "$PRESET" --batch "$BATCH" --minutes "$MINUTES" --out "$RUN" ${MAX_LINES:+--max-lines "$MAX_LINES"} \
    2>&1 | tee "$RUN/gpu_pretrain.log"
grep -E "tokens/s|MFU" "$RUN/gpu_pretrain.log" | head -3 || true
