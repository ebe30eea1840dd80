#!/usr/bin/env bash
# Pal & Sulam, MNIST, scaled to one CPU core: the clean base model (2 epochs on the 60,000
# training images) and one fine-tuned model h_alpha per alpha in {0.05, 0.10, ..., 0.90}
# (1 epoch from the clean model on a fixed random 30,000-image subset, every batch of 64 images
# repeated K = 2 times with fresh N(0, alpha^2 I) noise; Adadelta lr 1.0). The paper fine-tunes
# for 9 epochs on all 60,000 images with K = 100 and alpha every 0.01 (mnist_risk.toml).
# Usage: bash experiments/pal_sulam/mnist_cpu_train.sh [out folder]   (default runs/pal_sulam/mnist)
set -euo pipefail
out=${1:-runs/pal_sulam/mnist}
mkdir -p "$out"
smoothcert train --dataset mnist --arch mnist_cnn --epochs 2 --seed 0 --out "$out/clean.pt" --resume
for alpha in 0.05 0.10 0.15 0.20 0.25 0.30 0.35 0.40 0.45 0.50 0.55 0.60 0.65 0.70 0.75 0.80 0.85 0.90; do
  smoothcert train --dataset mnist --arch mnist_cnn --noise gaussian --sigma "$alpha" \
    --epochs 1 --noise-copies 2 --max-train 30000 --max-eval 2000 --seed 0 \
    --init-from "$out/clean.pt" --out "$out/alpha$alpha.pt" --resume
done
