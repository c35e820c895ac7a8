#!/usr/bin/env bash
# After a CPU fine-tuning run (training/configs/cpu_e5small_6l.json): export the checkpoint to ONNX int8
# (parity-gated), stack it with the shipped baseline (stacker and thresholds fit on dev), and print the dev
# comparison. Whether to ship it as models/default is decided on these DEV numbers; the carved test split is
# only read afterwards, by benchmarks/run_accuracy.py, to report.
#
#   bash training/cpu_ship.sh            # RUN=runs/cpu6 by default
set -euo pipefail
RUN=${RUN:-runs/cpu6}
BIN=${BIN:-.venv/bin}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
test -f "$RUN/run/model/qinglang.json" || { echo "no trained checkpoint in $RUN/run/model" >&2; exit 2; }
"$BIN/qinglang" export "$RUN/run/model" -o "$RUN/onnx" --overwrite --max-mb 50 --name e5small-6l-cpu \
    2>&1 | tee "$RUN/export.log"
"$BIN/qinglang" stack --member transformer="$RUN/onnx" --member baseline=models/baseline -o "$RUN/stacked" \
    --overwrite --restore --name default 2>&1 | tee "$RUN/stack.log"
du -sh "$RUN/onnx" "$RUN/stacked"
