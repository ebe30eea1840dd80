#!/usr/bin/env bash
# Pal & Sulam, MNIST, the paper's full grid (for a GPU): the clean base model, then one h_alpha
# per alpha in {0.01, ..., 0.99}, fine-tuned from it for 9 epochs on all 60,000 training images,
# every batch of 64 images repeated K = 100 times with fresh N(0, alpha^2 I) noise (Adadelta lr 1.0,
# StepLR gamma 0.7: the pal_sulam2023 recipe), then Delta-hat with 100 draws per test image on
# all 10,000 test images for beta in {0, 0.1, ..., 0.9} (experiments/pal_sulam/mnist_risk.toml).
# Every step resumes: rerun the script after an interruption.
# Usage: bash experiments/pal_sulam/mnist_full_gpu.sh [out folder] [device]
set -euo pipefail
out=${1:-runs/pal_sulam/mnist-full}
device=${2:-cuda}
mkdir -p "$out"
smoothcert train --dataset mnist --arch mnist_cnn --epochs 9 --seed 0 --device "$device" \
  --out "$out/clean.pt" --resume
for i in $(seq 1 99); do
  alpha=$(printf '0.%02d' "$i")
  smoothcert train --dataset mnist --arch mnist_cnn --noise gaussian --sigma "$alpha" \
    --epochs 9 --noise-copies 100 --seed 0 --device "$device" \
    --init-from "$out/clean.pt" --out "$out/alpha$alpha.pt" --resume
done
smoothcert risk --checkpoints "$out/clean.pt" "$out"/alpha*.pt --betas 0,0.1,...,0.9 --n 100 \
  --dataset mnist --split test --seed 0 --device "$device" --batch-size 10000 \
  --window 15 --order 3 --out "$out-risk"
