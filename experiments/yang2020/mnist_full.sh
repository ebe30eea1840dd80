#!/usr/bin/env bash
# [YDH+20]'s orderings in l1, l2 and linf at full MNIST scale: mnist_cnn trained on all 60,000
# training images for every family and sigma with the same budget (EPOCHS epochs, seed 0, the
# pal_sulam2023 recipe), each certified on 1,000 test images (every 10th) with n0 = 100,
# n = 100,000, alpha = 0.001 by adaptive certification (same guarantee as fixed n; goal: the
# radii below), then per-family envelopes with 95% intervals and paired McNemar tests of the
# predicted orderings (experiments/yang2020/paired.py). The runs, with the norms each certifies:
#   l1:   uniform, laplace, gaussian (converted)                 sigma 0.25, 0.5, 1.0
#   l2:   gaussian, exp2 (k = 1; k = 2, j = 522 ~ 2d/3 as [YDH+20]'s
#         j = 2048 at d = 3072), pow2, uniform_ball               sigma 0.25, 0.5
#   linf: gaussian (converted), uniform, laplace (exact linf),
#         exp_inf                                                 sigma 0.25, 0.5
# 19 models. The uniform models are those of the splitting-noise comparison
# (experiments/lf21/mnist_full_train.sh: 2 epochs, seed 0, the same recipe) when LF21 holds them
# and EPOCHS is 2; otherwise they are trained here.
#
# Every step resumes: `train --resume` continues or skips a checkpoint, `certify` continues after
# its last row; rerun the script after an interruption. Run from the repository root:
#   SMOOTHCERT_DATA_DIR=/path/to/data bash experiments/yang2020/mnist_full.sh
# Environment (defaults in brackets): OUT [runs/yang2020-mnist-full], DEVICE [cpu], EPOCHS [2],
# MAX_TRAIN [all], SKIP [10], MAX [-1], N [100000], N0 [100], BATCH [the CLI's default],
# MAX_EVAL [all: test accuracy after each epoch], ONLY [*: a glob over the run names, e.g.
# '*-0.5'], RESULTS [results/yang2020/mnist_full], LF21 [results/lf21/mnist_full/models],
# SHARD (I/N: certify only that shard, for one process per core; join the shards with
# `smoothcert merge`, then rerun without SHARD).
# Cost on a CPU: about 1.5 minutes of one core per model-epoch; a 1,000-image certification
# takes from minutes (sigma 0.25, one l1 goal) to 1.5 core-hours (sigma 1.0, six l1 goals; see
# mnist_l1.sh), more with these eleven goals: 20-50 core-hours in all at EPOCHS=2. Not timed on
# a GPU.
# Smoke test (minutes on one core):
#   OUT=/tmp/y EPOCHS=1 MAX_TRAIN=500 MAX_EVAL=200 SKIP=2000 N=200 N0=20 ONLY='*-0.5' \
#     RESULTS=/tmp/y/results bash experiments/yang2020/mnist_full.sh
set -euo pipefail
out=${OUT:-runs/yang2020-mnist-full}
device=${DEVICE:-cpu}
epochs=${EPOCHS:-2}
skip=${SKIP:-10}
max=${MAX:--1}
n=${N:-100000}
n0=${N0:-100}
lf21=${LF21:-results/lf21/mnist_full/models}
results=${RESULTS:-results/yang2020/mnist_full}
extra=()
[ -n "${BATCH:-}" ] && extra+=(--batch-size "$BATCH")
train_extra=()
[ -n "${MAX_TRAIN:-}" ] && train_extra+=(--max-train "$MAX_TRAIN")
[ -n "${MAX_EVAL:-}" ] && train_extra+=(--max-eval "$MAX_EVAL")
[ -n "${SHARD:-}" ] && extra+=(--shard "$SHARD")
# the adaptive goals: the l1/l2 radii and the linf radii 1/255 .. 8/255
radii=0.0039,0.0078,0.0157,0.0314,0.25,0.5,0.75,1,1.25,1.5,2

# name, family, sigma, norms, shape flags
runs=()
for s in 0.25 0.5 1.0; do
    if [ "$s" = 1.0 ]; then both=l1; else both=l1,linf; fi
    runs+=("uniform-$s uniform $s $both" "laplace-$s laplace $s $both")
    if [ "$s" = 1.0 ]; then runs+=("gaussian-$s gaussian $s l1"); else runs+=("gaussian-$s gaussian $s l1,l2,linf"); fi
done
for s in 0.25 0.5; do
    runs+=("exp2k1-$s exp2 $s l2 --k 1" "exp2k2j522-$s exp2 $s l2 --k 2 --j 522"
           "pow2-$s pow2 $s l2" "uniform_ball-$s uniform_ball $s l2" "exp_inf-$s exp_inf $s linf")
done

for run in "${runs[@]}"; do
    set -- $run
    name=$1 family=$2 sigma=$3 norms=$4
    shift 4
    # shellcheck disable=SC2053
    [[ "$name" == ${ONLY:-*} ]] || continue
    dir="$out/$name"
    mkdir -p "$dir"
    ckpt="$dir/checkpoint.pt"
    shared="$lf21/mnist_cnn-$family-$sigma.pt"
    if [ "$family" = uniform ] && [ "$epochs" = 2 ] && [ -z "${MAX_TRAIN:-}" ] && [ -f "$shared" ]; then
        ckpt=$shared
    else
        smoothcert train --dataset mnist --arch mnist_cnn --noise "$family" --sigma "$sigma" "$@" \
            --epochs "$epochs" --seed 0 --device "$device" --out "$ckpt" --resume "${train_extra[@]}"
    fi
    smoothcert certify --checkpoint "$ckpt" --noise "$family" --sigma "$sigma" "$@" \
        --norms "$norms" --convert --n0 "$n0" --n "$n" --alpha 0.001 --mode adaptive \
        --radii "$radii" --skip "$skip" --max "$max" --device "$device" "${extra[@]}" \
        --out "$dir/certify.tsv"
done
[ -n "${SHARD:-}" ] && exit 0

mkdir -p "$results"
files() {  # the finished certification files that have radii in norm $1
    for f in "$out"/*/certify.tsv; do
        grep -q "radius_$1" <(head -1 "$f") && echo "$f"
    done
}
mapfile -t l1 < <(files l1)
mapfile -t l2 < <(files l2)
mapfile -t linf < <(files linf)
python experiments/yang2020/paired.py "${l1[@]}" --norm l1 --radii 0.25,0.5,0.75,1,1.25,1.5,2 \
    --order uniform,laplace,gaussian --out "$results/l1" > "$results/l1.md"
python experiments/yang2020/paired.py "${l2[@]}" --norm l2 --radii 0.25,0.5,0.75,1 \
    --order gaussian,exp2,pow2,uniform_ball --out "$results/l2" > "$results/l2.md"
python experiments/yang2020/paired.py "${linf[@]}" --norm linf --radii 0.0039,0.0078,0.0157,0.0314 \
    --order gaussian,laplace,uniform,exp_inf --out "$results/linf" > "$results/linf.md"
smoothcert analyze "${l1[@]}" --norm l1 --by-noise --radii 0:2:0.25 --out "$results/l1_by_noise.csv"
smoothcert analyze "${l2[@]}" --norm l2 --by-noise --radii 0:1:0.125 --out "$results/l2_by_noise.csv"
smoothcert analyze "${linf[@]}" --norm linf --by-noise --out "$results/linf_by_noise.csv"
for norm in l1 l2 linf; do
    declare -n list=$norm
    smoothcert plot certified "${list[@]}" --norm "$norm" --by-noise \
        --title "MNIST, $norm: envelope over sigma" --out "$results/${norm}_by_noise.png"
done
for dir in "$out"/*/; do   # the certificates and their run records (not the checkpoints)
    [ -f "$dir/certify.tsv" ] || continue
    name=$(basename "$dir")
    mkdir -p "$results/runs/$name"
    cp "$dir/certify.tsv" "$dir/certify.json" "$results/runs/$name/"
done
echo "tables in $results"
