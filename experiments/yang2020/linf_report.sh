#!/usr/bin/env bash
# The linf tables of mnist_linf.sh and mnist_linf_envelope.sh, from certification TSVs (seconds):
#   bash experiments/yang2020/linf_report.sh OUT RADII KIND TITLE RUN.tsv...
# paired.py of every family against the Gaussian (OUT/beats_gaussian.*) and of the Gaussian
# against each (OUT/gaussian_beats.*), envelopes over the given runs of each family, Holm over
# RADII (comma-separated); then KIND runs: a row and a curve per run (OUT/linf_runs.md,
# OUT/linf.png), or KIND by_noise: a row and a curve per family's envelope (OUT/linf_by_noise.*).
set -euo pipefail
out=$1 radii=$2 kind=$3 title=$4
shift 4
for pairs in beats_gaussian:laplace\>gaussian,uniform\>gaussian,exp_inf\>gaussian \
             gaussian_beats:gaussian\>laplace,gaussian\>uniform,gaussian\>exp_inf; do
    python experiments/yang2020/paired.py "$@" --norm linf --radii "$radii" \
        --order gaussian,laplace,uniform,exp_inf --pairs "${pairs#*:}" \
        --out "$out/${pairs%%:*}" > "$out/${pairs%%:*}.md"
done
case $kind in
    runs) grouping=--no-envelope table=$out/linf_runs.md figure=$out/linf.png ;;
    by_noise) grouping=--by-noise table=$out/linf_by_noise.md figure=$out/linf_by_noise.png ;;
    *) echo "linf_report.sh: KIND must be runs or by_noise (got '$kind')" >&2; exit 2 ;;
esac
smoothcert analyze "$@" --norm linf --radii "0,$radii" $grouping --format markdown --out "$table"
smoothcert plot certified "$@" --norm linf $grouping --title "$title" --out "$figure"
echo "tables in $out"
