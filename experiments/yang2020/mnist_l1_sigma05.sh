#!/usr/bin/env bash
# [YDH+20]'s l1 ordering (uniform > Laplace > Gaussian at moderate radii) at sigma = 0.5 on full
# MNIST, a first slice of mnist_full.sh: mnist_cnn trained with Laplace and with Gaussian noise
# exactly as the splitting-noise comparison's uniform model (2 epochs on all 60,000 training
# images, seed 0, the pal_sulam2023 recipe), certified like its uniform run
# (results/lf21/mnist_full/uniform-0.5.tsv): the same 1,000 test images (every 10th), n0 = 100,
# n = 100,000, alpha = 0.001, adaptive with the l1 radius goals 0.25, 0.5, 0.75 (the Gaussian's
# l1 radius is its l2 radius, converted). Then paired McNemar tests of the ordering.
# Resumable. About 1 core-hour on a CPU; not timed on a GPU.
#
#   SMOOTHCERT_DATA_DIR=/path/to/data bash experiments/yang2020/mnist_l1_sigma05.sh [OUT]
set -euo pipefail
out=${1:-results/yang2020/mnist_l1_sigma05}
uniform=${UNIFORM:-results/lf21/mnist_full/uniform-0.5.tsv}
mkdir -p "$out/models"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
one() {  # family
    smoothcert train --dataset mnist --arch mnist_cnn --noise "$1" --sigma 0.5 --epochs 2 \
        --seed 0 --out "$out/models/mnist_cnn-$1-0.5.pt" --resume
    smoothcert certify --checkpoint "$out/models/mnist_cnn-$1-0.5.pt" --dataset mnist \
        --noise "$1" --sigma 0.5 --norms l1 --convert --n0 100 --n 100000 --alpha 0.001 \
        --mode adaptive --radii 0.25,0.5,0.75 --skip 10 --max 1000 --compile \
        --out "$out/$1-0.5.tsv"
}
one laplace > "$out/laplace.log" 2>&1 &
pid=$!
one gaussian > "$out/gaussian.log" 2>&1
wait "$pid"
python experiments/yang2020/paired.py "$uniform" "$out/laplace-0.5.tsv" "$out/gaussian-0.5.tsv" \
    --norm l1 --radii 0.25,0.5,0.75 --order uniform,laplace,gaussian --out "$out/l1" > "$out/l1.md"
smoothcert analyze "$uniform" "$out/laplace-0.5.tsv" "$out/gaussian-0.5.tsv" --norm l1 \
    --radii 0:1:0.25 --no-envelope --out "$out/l1_runs.md"
echo "tables in $out"
