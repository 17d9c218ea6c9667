#!/usr/bin/env bash
# Rewrite dvc.lock, and the reports that are in git, as a fresh clone's `make run` writes them: the
# whole pipeline run in a temporary copy of the working tree (tracked and untracked files, not the
# ignored outputs), with an empty MLflow registry there, so the first model that passes the gates is
# version 1 of the champion. This checkout's other outputs, registry and mlflow.db are untouched.
# Run it (`make lock`) after changing pipeline/, params.yaml or dvc.yaml, and commit what it wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' file; do [[ -e "$file" ]] && printf '%s\0' "$file"; done \
    | tar --null -cf - -T - | tar -xf - -C "$work"
cd "$work"
dvc config --local core.no_scm true
env -u MLFLOW_TRACKING_URI dvc repro -q
cp dvc.lock "$root/dvc.lock"
# The uncached outputs that are in git, as a fresh clone's first run writes them.
for out in reports/metrics.json reports/evaluation.json reports/ingest.json reports/features.json; do
    cp "$out" "$root/$out"
done
mkdir -p "$root/reports/plots"
cp reports/plots/*.csv "$root/reports/plots/"
echo "dvc.lock and the reports in git rewritten from a fresh run in $work (removed)"
