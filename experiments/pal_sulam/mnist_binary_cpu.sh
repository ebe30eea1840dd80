#!/usr/bin/env bash
# Pal & Sulam, binary MNIST (the two-class setting of the paper's theory; its architecture line
# ends in Linear(128, 2)): fours against nines, scaled to one CPU core. The clean base model
# (2 epochs on the 11,791 training fours and nines), one fine-tuned h_alpha per alpha in
# {0.1, ..., 0.9} (1 epoch from the clean model, K = 2 noisy copies per image, Adadelta lr 1.0),
# then Delta-hat for beta in {0, 0.1, ..., 0.9} on the 1,991 test fours and nines, 5 draws each.
# Usage: bash experiments/pal_sulam/mnist_binary_cpu.sh [out folder]   (default runs/pal_sulam/binary)
set -euo pipefail
out=${1:-runs/pal_sulam/binary}
mkdir -p "$out"
common=(--dataset mnist --arch mnist_cnn --classes 4,9 --seed 0)
smoothcert train "${common[@]}" --epochs 2 --out "$out/clean.pt" --resume
for alpha in 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9; do
  smoothcert train "${common[@]}" --noise gaussian --sigma "$alpha" --epochs 1 --noise-copies 2 \
    --init-from "$out/clean.pt" --out "$out/alpha$alpha.pt" --resume
done
smoothcert risk --checkpoints "$out/clean.pt" "$out"/alpha*.pt --dataset mnist --classes 4,9 \
  --split test --betas 0,0.1,...,0.9 --n 5 --seed 0 --channels-last --batch-size 250 \
  --window 5 --order 2 --formats png,pdf --out "$out-risk"
