#!/usr/bin/env bash
# Tables, paired tests and figure of the splitting-noise comparison on MNIST, from the files of
# mnist_full_certify.sh (seconds; no model is run):
#   bash experiments/lf21/mnist_full_report.sh [OUT]
# - l1_shared.md: certified l1 accuracy of every run on the 1,000 images all runs have;
# - l1_by_noise_shared.md and .png: the envelope over sigma of each family on those images;
# - l1_sigma*.png: the three families at each sigma on those images;
# - dssn_all.md: DSSN on all 10,000 test images;
# - paired_*.md (+ .envelope.csv, .tests.csv): exact McNemar tests on the shared images;
# - cost.md: forward passes and seconds per image of each run (means over its rows).
set -euo pipefail
out=${1:-results/lf21/mnist_full}
paired=$(cd "$(dirname "$0")/../yang2020" && pwd)/paired.py
cd "$out"
shared=()
for sigma in 0.25 0.5 1.0; do
    for noise in uniform ssn; do shared+=("$noise-$sigma.tsv"); done
    # DSSN at sigma 1.0 runs in 10 shards: before they are merged, its shard 0 (every 10th
    # image, the adaptive runs' images)
    if [ -f "dssn-$sigma.tsv" ]; then shared+=("dssn-$sigma.tsv"); else shared+=("dssn-$sigma.shard0-of-10.tsv"); fi
done
radii=0:2:0.25
smoothcert analyze "${shared[@]}" --common --norm l1 --radii "$radii" --no-envelope \
    --out l1_shared.md
smoothcert analyze "${shared[@]}" --common --norm l1 --radii "$radii" --by-noise \
    --out l1_by_noise_shared.md
smoothcert plot certified "${shared[@]}" --common --norm l1 --by-noise --max-radius 2 \
    --title "MNIST, l1: envelope over sigma (0.25, 0.5, 1.0), shared images" \
    --out l1_by_noise_shared.png
for i in 0 1 2; do  # one figure per sigma: the three families on the shared images
    sigma=$(echo 0.25 0.5 1.0 | cut -d' ' -f$((i + 1)))
    smoothcert plot certified "${shared[@]:$((3 * i)):3}" --common --norm l1 --max-radius 2 \
        --labels uniform,ssn,dssn --no-envelope --title "MNIST, l1, sigma = $sigma, shared images" \
        --out "l1_sigma$sigma.png"
done
full=()
for sigma in 0.25 0.5 1.0; do [ -f "dssn-$sigma.tsv" ] && full+=("dssn-$sigma.tsv"); done
smoothcert analyze "${full[@]}" --norm l1 --radii "$radii" --out dssn_all.md
for order in dssn,uniform uniform,dssn dssn,ssn ssn,dssn; do
    python "$paired" "${shared[@]}" --common --norm l1 --radii 0.25,0.5,0.75,1,1.25,1.5 \
        --order "$order" --out "paired_${order/,/_over_}" > "paired_${order/,/_over_}.md"
done
{
    echo "| run | images | forward passes per image | seconds per image |"
    echo "|---|---:|---:|---:|"
    for f in uniform-*.tsv ssn-*.tsv dssn-*.tsv; do
        awk -F'\t' -v run="${f%.tsv}" '
            NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
            { n++; s += $col["samples"]; t += $col["seconds"] }
            END { printf "| %s | %d | %.0f | %.3f |\n", run, n, s / n, t / n }' "$f"
    done
} > cost.md
echo "tables in $out"
