#!/usr/bin/env bash
# Pal & Sulam, CIFAR-10 (for a GPU; needs the full CIFAR-10 python batches in the data directory):
# one CIFAR ResNet-110 per training noise alpha in {0, 0.02, ..., 0.60}, trained from scratch with
# Gaussian noise alpha (Yang et al.'s recipe: SGD 0.1, Nesterov, cosine, crop + flip, 90 epochs;
# the paper released no training code), then Delta-hat with 200 draws per image on 400 test images
# for beta in {0, 0.1, ..., 0.6} (experiments/pal_sulam/cifar10_risk.toml). Every step resumes.
# Usage: bash experiments/pal_sulam/cifar10_gpu.sh [out folder] [device]
set -euo pipefail
out=${1:-runs/pal_sulam/cifar10}
device=${2:-cuda}
mkdir -p "$out"
smoothcert train --dataset cifar10 --arch resnet110 --recipe yang2020 --epochs 90 --seed 0 \
  --device "$device" --out "$out/clean.pt" --resume
for i in $(seq 2 2 60); do
  alpha=$(printf '0.%02d' "$i")
  smoothcert train --dataset cifar10 --arch resnet110 --recipe yang2020 --epochs 90 --seed 0 \
    --noise gaussian --sigma "$alpha" --device "$device" --out "$out/alpha$alpha.pt" --resume
done
smoothcert risk --checkpoints "$out/clean.pt" "$out"/alpha*.pt --betas 0,0.1,...,0.6 --n 200 \
  --dataset cifar10 --split test --max-examples 400 --seed 0 --device "$device" \
  --batch-size 4000 --window 15 --order 3 --out "$out-risk"
