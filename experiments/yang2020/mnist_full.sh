#!/usr/bin/env bash
# [YDH+20]'s orderings in l1, l2 and linf at full MNIST scale: mnist_cnn trained on all 60,000
# training images for every family and sigma with the same budget (EPOCHS epochs, seed 0), each
# certified on 1,000 test images (every 10th) with n0 = 100, n = 100,000, alpha = 0.001 by
# adaptive certification (same guarantee as fixed n; goal: the radii below in every norm), then
# per-family envelopes with 95% intervals and paired McNemar tests of the predicted orderings
# (experiments/yang2020/paired.py).
#
# Every step resumes: `train --resume` continues or skips a checkpoint, `certify` continues after
# its last row; rerun the script after an interruption. Run from the repository root:
#   SMOOTHCERT_DATA_DIR=/path/to/data bash experiments/yang2020/mnist_full.sh
# Environment (defaults in brackets): OUT [runs/yang2020-mnist-full], DEVICE [cpu], EPOCHS [9],
# MAX_TRAIN [all], SKIP [10], MAX [-1], N [100000], N0 [100], BATCH [250 on cpu, 10000 else],
# MAX_EVAL [all: test accuracy after each epoch], ONLY [*: a glob over the run names, e.g.
# '*-sigma0.5'], RESULTS [results/yang2020/mnist_full], SHARD (I/N: certify only that shard, for one process
# per core; join the shards with `smoothcert merge`, then rerun without SHARD).
# Smoke test (minutes on one core):
#   OUT=/tmp/y EPOCHS=1 MAX_TRAIN=500 MAX_EVAL=200 SKIP=2000 N=200 N0=20 ONLY='*-sigma0.5' \
#     RESULTS=/tmp/y/results bash experiments/yang2020/mnist_full.sh
set -euo pipefail
out=${OUT:-runs/yang2020-mnist-full}
device=${DEVICE:-cpu}
epochs=${EPOCHS:-9}
skip=${SKIP:-10}
max=${MAX:--1}
n=${N:-100000}
n0=${N0:-100}
results=${RESULTS:-results/yang2020/mnist_full}
if [ "$device" = cpu ]; then batch=${BATCH:-250}; fast=--channels-last; else batch=${BATCH:-10000}; fast=; fi
train_extra=()
[ -n "${MAX_TRAIN:-}" ] && train_extra+=(--max-train "$MAX_TRAIN")
[ -n "${MAX_EVAL:-}" ] && train_extra+=(--max-eval "$MAX_EVAL")
shard=()
[ -n "${SHARD:-}" ] && shard=(--shard "$SHARD")
# the adaptive goal: every radius in every norm (l1/l2 radii and the linf radii 1/255 .. 16/255)
radii=0.0039,0.0078,0.0157,0.0314,0.0627,0.25,0.5,0.75,1,1.25,1.5,2,2.5,3,3.5,4

runs=()
for family in uniform laplace gaussian; do
  for sigma in 0.25 0.5 0.75 1.0 1.25; do runs+=("$family $sigma"); done
done
for sigma in 1.5 2.0 2.5; do runs+=("uniform $sigma"); done   # uniform's radius caps at sqrt(3) sigma

for run in "${runs[@]}"; do
  set -- $run
  dir="$out/$1-sigma$2"
  # shellcheck disable=SC2053
  [[ "$1-sigma$2" == ${ONLY:-*} ]] || continue
  mkdir -p "$dir"
  smoothcert train --dataset mnist --arch mnist_cnn --noise "$1" --sigma "$2" --epochs "$epochs" \
    --seed 0 --device "$device" --out "$dir/checkpoint.pt" --resume "${train_extra[@]}"
  smoothcert certify --checkpoint "$dir/checkpoint.pt" --noise "$1" --sigma "$2" \
    --norms l1,l2,linf --convert --n0 "$n0" --n "$n" --alpha 0.001 --mode adaptive \
    --radii "$radii" --skip "$skip" --max "$max" --device "$device" --batch-size "$batch" $fast \
    --out "$dir/certify.tsv" "${shard[@]}"
done
[ -n "${SHARD:-}" ] && exit 0

mkdir -p "$results"
python experiments/yang2020/paired.py "$out"/*/certify.tsv --norm l1 \
  --radii 0.25,0.5,0.75,1,1.5,2,2.5,3,3.5,4 --order uniform,laplace,gaussian \
  --out "$results/l1" > "$results/l1.md"
python experiments/yang2020/paired.py "$out"/*/certify.tsv --norm l2 \
  --radii 0.25,0.5,0.75,1,1.5,2 --order gaussian,uniform,laplace --out "$results/l2" \
  > "$results/l2.md"
python experiments/yang2020/paired.py "$out"/*/certify.tsv --norm linf \
  --radii 0.0039,0.0078,0.0157,0.0314,0.0627 --order gaussian,laplace,uniform \
  --out "$results/linf" > "$results/linf.md"
for norm in l1 l2 linf; do
  smoothcert analyze "$out"/*/certify.tsv --norm "$norm" --by-noise --format csv \
    --out "$results/${norm}_by_noise.csv"
done
for dir in "$out"/*/; do   # the certificates and their run records (not the checkpoints)
  [ -f "$dir/certify.tsv" ] || continue
  name=$(basename "$dir")
  mkdir -p "$results/runs/$name"
  cp "$dir/certify.tsv" "$dir/certify.json" "$results/runs/$name/"
done
echo "tables in $results"
