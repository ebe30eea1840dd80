#!/usr/bin/env bash
# Levine & Feizi (2021) on MNIST at CPU scale: the paper's CNN (mnist_cnn) trained 1 epoch on all
# 60,000 training images with uniform, ssn and dssn noise at sigma = 0.5 (the same budget for each:
# 60,000 noisy images, the pal_sulam2023 recipe); DSSN certified exactly on 1,000 test images
# (every 10th); uniform and ssn by CERTIFY (n0 = 100, n = 100,000, alpha = 0.001) in adaptive mode
# (radius goals 0.25, 0.5, ..., 1.5) on 100 of the same images (every 100th).
# Resumable: a finished model or certification is skipped, a killed one resumes.
#
#   SMOOTHCERT_DATA_DIR=/path/to/data bash experiments/lf21/mnist_cpu.sh [OUT]
# About 35 minutes of one CPU core (measured on a shared 2-core machine); not timed on a GPU.
set -euo pipefail
out=${1:-results/lf21/mnist_cpu}
sigma=0.5
mkdir -p "$out"
for noise in uniform ssn dssn; do
    ckpt="$out/models/mnist_cnn-$noise-$sigma.pt"
    mkdir -p "$out/models"
    smoothcert train --dataset mnist --arch mnist_cnn --noise "$noise" --sigma "$sigma" \
        --epochs 1 --seed 0 --out "$ckpt" --resume
done
smoothcert certify --checkpoint "$out/models/mnist_cnn-dssn-$sigma.pt" --dataset mnist \
    --noise dssn --sigma "$sigma" --norms l1 --skip 10 --max 1000 --channels-last \
    --out "$out/dssn-$sigma.tsv"
for noise in uniform ssn; do
    smoothcert certify --checkpoint "$out/models/mnist_cnn-$noise-$sigma.pt" --dataset mnist \
        --noise "$noise" --sigma "$sigma" --norms l1 --n0 100 --n 100000 --alpha 0.001 \
        --mode adaptive --radii 0.25,0.5,0.75,1,1.25,1.5 --skip 100 --max 100 --channels-last \
        --out "$out/$noise-$sigma.tsv"
done
