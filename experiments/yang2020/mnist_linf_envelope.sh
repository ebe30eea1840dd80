#!/usr/bin/env bash
# [YDH+20]'s linf claim on full MNIST, the envelope over sigma in {0.25, 0.5}: the runs of
# `mnist_linf.sh 0.25` and `mnist_linf.sh 0.5` (run those first; this script only reads their
# TSVs, in seconds) taken together, each family's envelope choosing at every radius the sigma
# with the most images certified, with 95% Clopper-Pearson intervals, and the paired McNemar
# tests of "family X certifies more than the Gaussian" and of the Gaussian against each, Holm
# over the seven radii (0.0005, the six goals up to 8/255). Run from the repository root:
#   bash experiments/yang2020/mnist_linf_envelope.sh [OUT]
# OUT [results/yang2020/mnist_linf]; IN025, IN05 [results/yang2020/mnist_linf_sigma025, _sigma05].
set -euo pipefail
out=${1:-results/yang2020/mnist_linf}
in025=${IN025:-results/yang2020/mnist_linf_sigma025}
in05=${IN05:-results/yang2020/mnist_linf_sigma05}
mkdir -p "$out"
runs=()
for family in gaussian laplace uniform exp_inf; do
    runs+=("$in025/$family-0.25.tsv" "$in05/$family-0.5.tsv")
done
radii=0.0005,0.001,0.002,0.0039,0.0078,0.0157,0.0314
bash experiments/yang2020/linf_report.sh "$out" "$radii" by_noise \
    "MNIST, linf: envelope over sigma in {0.25, 0.5}" "${runs[@]}"
