#!/usr/bin/env bash
# Certification for the splitting-noise comparison on MNIST, after mnist_full_train.sh:
# - dssn: exact certificates on all 10,000 test images (L = floor(2 sqrt(3) sigma 255) forward
#   passes each: 220, 441, 883 at sigma 0.25, 0.5, 1.0);
# - uniform and ssn: CERTIFY with n0 = 100, n = 100,000, alpha = 0.001 in adaptive mode, radius
#   goals 0.25, 0.5, ... below the family's largest l1 radius sqrt(3) sigma, on 1,000 test images
#   (every 10th, a subset of DSSN's);
# - dssn at sigma 1.0 (the longest run) in 10 round-robin shards, merged at the end: shard 0 is
#   every 10th image, the adaptive runs' 1,000.
# A queue in priority order, run by two one-thread workers (for a 2-core machine). Resumable: a
# finished run is skipped, a killed one resumes where it stopped.
#
#   SMOOTHCERT_DATA_DIR=/path/to/data bash experiments/lf21/mnist_full_certify.sh [OUT]
# About 2 hours on a shared 2-core machine (sigma 0.5 eager, the rest compiled); not timed on a GPU.
set -euo pipefail
out=${1:-results/lf21/mnist_full}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OUT="$out"
goals() {  # the radius goals below sqrt(3) sigma
    case $1 in 0.25) echo 0.25 ;; 0.5) echo 0.25,0.5,0.75 ;; 1.0) echo 0.25,0.5,0.75,1,1.25,1.5 ;; esac
}
jobs() {
    echo "dssn 0.5"; echo "uniform 0.5"; echo "ssn 0.5"
    echo "dssn 0.25"; echo "uniform 0.25"; echo "ssn 0.25"
    echo "uniform 1.0"; echo "ssn 1.0"
    for i in 0 1 2 3 4 5 6 7 8 9; do echo "dssn 1.0 $i"; done
}
run() {  # noise sigma [shard I of 10 of dssn's 10,000 images: shard 0 is every 10th image]
    local noise=$1 sigma=$2 ckpt="$OUT/models/mnist_cnn-$1-$2.pt"
    # wait for the model's last epoch (a checkpoint is written after every epoch)
    until grep -q '^2,' "${ckpt%.pt}.metrics.csv" 2>/dev/null; do sleep 20; done
    # sigma 0.5 ran first, in eager mode; the other sigmas through torch.compile, 1.8x faster
    # on this CPU (the same certificates on a 20-image check)
    local fast=()
    [ "$sigma" = 0.5 ] || fast=(--compile)
    if [ "$noise" = dssn ] && [ -n "${3:-}" ]; then
        smoothcert certify --checkpoint "$ckpt" --dataset mnist --noise dssn --sigma "$sigma" \
            --norms l1 --skip 1 --max 10000 --shard "$3/10" "${fast[@]}" --out "$OUT/dssn-$sigma.tsv"
    elif [ "$noise" = dssn ]; then
        smoothcert certify --checkpoint "$ckpt" --dataset mnist --noise dssn --sigma "$sigma" \
            --norms l1 --skip 1 --max 10000 "${fast[@]}" --out "$OUT/dssn-$sigma.tsv"
    else
        smoothcert certify --checkpoint "$ckpt" --dataset mnist --noise "$noise" \
            --sigma "$sigma" --norms l1 --n0 100 --n 100000 --alpha 0.001 --mode adaptive \
            --radii "$(goals "$sigma")" --skip 10 --max 1000 "${fast[@]}" \
            --out "$OUT/$noise-$sigma.tsv"
    fi > "$OUT/$noise-$sigma${3:+.shard$3-of-10}.log" 2>&1
}
export -f run goals
jobs | xargs -P 2 -L 1 bash -c 'run "$@"' run
smoothcert merge "$out"/dssn-1.0.shard{0,1,2,3,4,5,6,7,8,9}-of-10.tsv --out "$out/dssn-1.0.tsv"
