#!/usr/bin/env bash
# The feedback-use study's report from the runs finished so far (issue 16): tables, paired tests
# and curves, copied into docs/study/ for docs/RESULTS.md. Trains nothing.
#   bash tools/study_report.sh [CONFIG]   (or STUDY_CONFIG=CONFIG, as tools/study_run.sh reads it;
#   default recipes/compare/study-feedback.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-${STUDY_CONFIG:-recipes/compare/study-feedback.yaml}}
out=$(.venv/bin/python -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['output_dir'])" "$config")
.venv/bin/rltf compare --config "$config" --report-only > /dev/null
mkdir -p docs/study
cp "$out/results.md" "$out/results.json" docs/study/
# the accuracy and revision-use curves of each task that has a finished training run
tasks=$(.venv/bin/python -c "
import json, sys
s = json.load(open(sys.argv[1]))
print(' '.join(t for t, m in s['by_task'].items()
               if any(r['points'] and r['method'] != 'base' for r in m['accuracy']['table'].values())))" "$out/results.json")
rm -f docs/study/*.png
for task in $tasks; do
  for metric in accuracy revision_use draft_revision_use; do
    src="$out/curves-$task-$metric.png"
    [ -f "$src" ] && cp "$src" "docs/study/$task-$metric.png"
  done
done
# the confirmatory report: seeds 1-2 alone (seed 0 suggested the hypotheses; docs/RESULTS.md)
if .venv/bin/rltf compare --config "$config" --report-only --set 'seeds=[1, 2]' \
     --report-dir "$out/confirm-seeds-1-2" > /dev/null 2>&1; then
  cp "$out/confirm-seeds-1-2/results.md" docs/study/confirm-seeds-1-2.md
else
  echo "no finished run of seeds 1-2 yet: no confirmatory report"
fi
# every finished run's result, metrics and wall time, committed with the report: runs/ is not
.venv/bin/python tools/study_archive.py save "$config"
echo "wrote docs/study/ from $out"
