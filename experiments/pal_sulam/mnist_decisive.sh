#!/usr/bin/env bash
# Pal & Sulam, MNIST, decided per image: the clean base model (EPOCHS_CLEAN epochs on all 60,000
# training images), h_alpha for alpha in ALPHAS fine-tuned from it (EPOCHS epochs on all 60,000
# images, every batch repeated COPIES times with fresh N(0, alpha^2 I) noise; the pal_sulam2023
# recipe), then for every (alpha, beta) which of the 10,000 test images the majority vote of
# N = 100 draws gets wrong, and paired McNemar tests of alpha* against alpha = beta and alpha = 0
# per beta (experiments/pal_sulam/mnist_per_image.py; its error counts equal `smoothcert risk`'s
# with the same N and seed). The paper: K = 100 copies, 9 epochs, alpha every 0.01.
#
# Every step resumes (train --resume; one file per (alpha, beta) cell): rerun after an
# interruption. Run from the repository root:
#   SMOOTHCERT_DATA_DIR=/path/to/data bash experiments/pal_sulam/mnist_decisive.sh
# Environment (defaults in brackets): OUT [runs/pal_sulam/mnist-decisive], DEVICE [cpu],
# EPOCHS_CLEAN [9], EPOCHS [3], COPIES [10], ALPHAS [0.05 0.10 ... 0.95], BETAS
# [0,0.1,...,0.9], N [100], MAX_EXAMPLES [-1: all], MAX_TRAIN [all], MAX_EVAL [all],
# BATCH [250 on cpu, 20000 else], RESULTS [results/pal_sulam/mnist_decisive], CELLS [all: the
# (alpha, beta) pairs to evaluate, e.g. 0.30/0.50,0.50/0.50; the clean model is alpha 0],
# JOBS [1: evaluation processes, the checkpoints dealt out among them].
# Smoke test (minutes on one core):
#   OUT=/tmp/p EPOCHS_CLEAN=1 EPOCHS=1 COPIES=1 MAX_TRAIN=500 MAX_EVAL=200 ALPHAS="0.25 0.5" \
#     BETAS=0,0.5 N=5 MAX_EXAMPLES=100 RESULTS=/tmp/p/results bash experiments/pal_sulam/mnist_decisive.sh
set -euo pipefail
out=${OUT:-runs/pal_sulam/mnist-decisive}
device=${DEVICE:-cpu}
alphas=${ALPHAS:-$(seq -f '%.2f' 0.05 0.05 0.95 | tr '\n' ' ')}
betas=${BETAS:-0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9}
results=${RESULTS:-results/pal_sulam/mnist_decisive}
if [ "$device" = cpu ]; then batch=${BATCH:-1000}; fast="--channels-last --compile"; else batch=${BATCH:-20000}; fast=; fi
extra=()
[ -n "${MAX_TRAIN:-}" ] && extra+=(--max-train "$MAX_TRAIN")
[ -n "${MAX_EVAL:-}" ] && extra+=(--max-eval "$MAX_EVAL")
mkdir -p "$out"

smoothcert train --dataset mnist --arch mnist_cnn --epochs "${EPOCHS_CLEAN:-9}" --seed 0 \
  --device "$device" --out "$out/clean.pt" --resume "${extra[@]}"
checkpoints=("$out/clean.pt")
for alpha in $alphas; do
  smoothcert train --dataset mnist --arch mnist_cnn --noise gaussian --sigma "$alpha" \
    --epochs "${EPOCHS:-3}" --noise-copies "${COPIES:-10}" --seed 0 --device "$device" \
    --init-from "$out/clean.pt" --out "$out/alpha$alpha.pt" --resume "${extra[@]}"
  checkpoints+=("$out/alpha$alpha.pt")
done

cells=()
[ -n "${CELLS:-}" ] && cells=(--cells "$CELLS")
jobs=${JOBS:-1}
pids=()
for ((j = 0; j < jobs; j++)); do   # checkpoint j, j + jobs, ... in process j
    mine=()
    for ((k = j; k < ${#checkpoints[@]}; k += jobs)); do mine+=("${checkpoints[k]}"); done
    # shellcheck disable=SC2086
    python experiments/pal_sulam/mnist_per_image.py --checkpoints "${mine[@]}" \
      --betas "$betas" "${cells[@]}" --n "${N:-100}" --seed 0 --curtail \
      --max-examples "${MAX_EXAMPLES:--1}" --device "$device" --batch-size "$batch" $fast \
      --out "$out-per-image" > "$out-per-image.$j.log" 2>&1 &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done   # set -e: stop if one failed
python experiments/pal_sulam/mnist_per_image.py --report --out "$out-per-image"
mkdir -p "$results"
cp "$out-per-image"/{risk,tests}.{csv,md} "$results/"
for ck in "${checkpoints[@]}"; do   # training metrics, for the budget actually spent
  cp "${ck%.pt}.metrics.csv" "$results/$(basename "${ck%.pt}").metrics.csv"
done
echo "tables in $results"
