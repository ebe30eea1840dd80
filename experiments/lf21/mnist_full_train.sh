#!/usr/bin/env bash
# The nine MNIST models of the splitting-noise comparison (and the uniform models of the Yang et
# al. l1 comparison): mnist_cnn trained 2 epochs on all 60,000 training images (the
# pal_sulam2023 recipe, seed 0) with uniform, ssn and dssn noise (quantization 255, template
# seed 0) at sigma in {0.25, 0.5, 1.0}. The same budget for each: 120,000 noisy images.
# Two lanes of one thread each (for a 2-core machine); resumable: finished models are skipped.
#
#   SMOOTHCERT_DATA_DIR=/path/to/data bash experiments/lf21/mnist_full_train.sh [OUT]
# About 25 minutes on an idle 2-core CPU; not timed on a GPU.
set -euo pipefail
out=${1:-results/lf21/mnist_full}
mkdir -p "$out/models"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
train() {  # noise sigma
    smoothcert train --dataset mnist --arch mnist_cnn --noise "$1" --sigma "$2" --epochs 2 \
        --seed 0 --out "$out/models/mnist_cnn-$1-$2.pt" --resume
}
lane_a() { for s in 0.5 0.25 1.0; do train dssn "$s"; train ssn "$s"; done; }
lane_b() { train uniform 0.5; train uniform 0.25; train uniform 1.0; }
lane_a > "$out/models/train-a.log" 2>&1 &
a=$!
lane_b > "$out/models/train-b.log" 2>&1
wait "$a"
