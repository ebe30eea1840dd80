#!/usr/bin/env bash
# Pal & Sulam, MNIST: certified l2 accuracy (Cohen et al.'s CERTIFY: n0 = 100, n = 1,000,
# alpha = 0.001, abstain when p_lower <= 1/2) for a few (training noise alpha, smoothing noise beta)
# pairs, on every 20th test image (500 images), with the models of mnist_cpu_train.sh.
# Usage: bash experiments/pal_sulam/mnist_certify_cpu.sh [models folder] [out folder]
set -euo pipefail
models=${1:-runs/pal_sulam/mnist}
out=${2:-runs/pal_sulam/mnist-certify}
mkdir -p "$out"
for pair in clean:0.50 alpha0.35:0.50 alpha0.50:0.50 alpha0.25:0.25; do
  model=${pair%%:*}; beta=${pair##*:}
  smoothcert certify --checkpoint "$models/$model.pt" --noise gaussian --sigma "$beta" \
    --n0 100 --n 1000 --alpha 0.001 --skip 20 --seed 0 --channels-last --batch-size 250 \
    --out "$out/$model-beta$beta.tsv"
done
smoothcert analyze "$out"/*.tsv --norm l2 --radii 0,0.25,0.5,0.75,1.0 --no-envelope --format markdown
