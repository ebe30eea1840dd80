#!/usr/bin/env bash
# [YDH+20]'s l1 ordering (uniform > Laplace > Gaussian at moderate radii) on full MNIST with the
# envelope over sigma in {0.25, 0.5, 1.0}: mnist_cnn trained with Laplace and with Gaussian noise
# exactly as the splitting-noise comparison's uniform models (2 epochs on all 60,000 training
# images, seed 0, the pal_sulam2023 recipe), and certified like its uniform runs
# (results/lf21/mnist_full/uniform-<sigma>.tsv): the same 1,000 test images (every 10th),
# n0 = 100, n = 100,000, alpha = 0.001, adaptive, with that run's l1 radius goals (the goals below
# uniform's cap sqrt(3) sigma: 0.25 at sigma 0.25; 0.25, 0.5, 0.75 at 0.5; 0.25 ... 1.5 at 1.0);
# the Gaussian's l1 radius is its l2 radius, converted. The sigma = 0.5 runs are those of
# mnist_l1_sigma05.sh. Those goals stop where uniform noise must stop, while Laplace and Gaussian
# noise at sigma 0.25 and 0.5 reach further; so these models are certified a second time, on the
# same images and with the same protocol, for the goals above (0.5, 0.75, 1 at sigma 0.25;
# 1, 1.25, 1.5 at 0.5) into <family>-<sigma>-far.tsv, and the envelope chooses among all runs.
# FAR [laplace-0.5 gaussian-0.5 laplace-0.25 gaussian-0.25]: the second certifications to run
# and count. The tests of the reverse orderings (l1_reverse.md) say whether a prediction that
# fails is refuted.
# Then per-family envelopes with 95% intervals and paired McNemar tests of the ordering on the
# images every run saw. Resumable: rerun after an interruption.
# About 3.5 core-hours on a CPU for the first certifications (the sigma = 1.0 ones dominate), and
# for the second: Laplace 0.5 53 core-minutes, Gaussian 0.5 3.1 core-hours, Laplace 0.25 1.2,
# Gaussian 0.25 1.1; not timed on a GPU.
#
#   SMOOTHCERT_DATA_DIR=/path/to/data bash experiments/yang2020/mnist_l1.sh [OUT]
# JOBS [2]: how many runs at once (one thread each).
set -euo pipefail
out=${1:-results/yang2020/mnist_l1}
lf21=${LF21:-results/lf21/mnist_full}
half=${HALF:-results/yang2020/mnist_l1_sigma05}
mkdir -p "$out/models"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
goals() {
    case $1 in 0.25) echo 0.25 ;; 0.25-far) echo 0.5,0.75,1 ;; 0.5-far) echo 1,1.25,1.5 ;;
        1.0) echo 0.25,0.5,0.75,1,1.25,1.5 ;; esac
}
one() {  # family sigma [far]
    local model=$out/models/mnist_cnn-$1-$2.pt
    if [ "$2" = 0.5 ]; then model=$half/models/mnist_cnn-$1-$2.pt; fi
    smoothcert train --dataset mnist --arch mnist_cnn --noise "$1" --sigma "$2" --epochs 2 \
        --seed 0 --out "$model" --resume
    smoothcert certify --checkpoint "$model" --dataset mnist \
        --noise "$1" --sigma "$2" --norms l1 --convert --n0 100 --n 100000 --alpha 0.001 \
        --mode adaptive --radii "$(goals "$2${3:+-$3}")" --skip 10 --max 1000 --compile \
        --out "$out/$1-$2${3:+-$3}.tsv"
}
export -f one goals
export out half
far=(${FAR:-laplace-0.5 gaussian-0.5 laplace-0.25 gaussian-0.25})
{
    printf '%s\n' "laplace 0.25" "gaussian 0.25" "laplace 1.0" "gaussian 1.0"
    for run in "${far[@]}"; do echo "${run%-*} ${run##*-} far"; done
} | xargs -P "${JOBS:-2}" -L 1 bash -c 'one "$0" "$1" "${2:-}" > "$out/$0-$1${2:+-$2}.log" 2>&1'
runs=("$lf21"/uniform-{0.25,0.5,1.0}.tsv "$out"/laplace-0.25.tsv "$half"/laplace-0.5.tsv
      "$out"/laplace-1.0.tsv "$out"/gaussian-0.25.tsv "$half"/gaussian-0.5.tsv "$out"/gaussian-1.0.tsv)
for run in "${far[@]}"; do runs+=("$out/$run-far.tsv"); done
python experiments/yang2020/paired.py "${runs[@]}" --norm l1 --radii 0.25,0.5,0.75,1,1.25,1.5 \
    --order uniform,laplace,gaussian --out "$out/l1" > "$out/l1.md"
python experiments/yang2020/paired.py "${runs[@]}" --norm l1 --radii 0.25,0.5,0.75,1,1.25,1.5 \
    --order uniform,laplace,gaussian --pairs "laplace>uniform,gaussian>laplace" \
    --out "$out/l1_reverse" > "$out/l1_reverse.md"
python experiments/yang2020/paired.py "$lf21"/uniform-1.0.tsv "$out"/{laplace,gaussian}-1.0.tsv \
    --norm l1 --radii 0.25,0.5,0.75,1,1.25,1.5 --order uniform,laplace,gaussian \
    --out "$out/l1_sigma1" > "$out/l1_sigma1.md"   # the families at equal sigma = 1.0
smoothcert analyze "${runs[@]}" --norm l1 --radii 0:1.5:0.25 --common --by-noise \
    --format markdown --out "$out/l1_by_noise.md"
smoothcert analyze "${runs[@]}" --norm l1 --radii 0:1.5:0.25 --common --no-envelope \
    --format markdown --out "$out/l1_runs.md"
smoothcert plot certified "${runs[@]}" --norm l1 --common --by-noise \
    --title "MNIST, l1: envelope over sigma" --out "$out/l1_by_noise.png"
echo "tables in $out"
