#!/usr/bin/env bash
# The feedback-use study's report from the runs finished so far (issue 16): tables, paired tests
# and curves, copied into studies/feedback-use/archive/ for docs/RESULTS.md. Trains nothing.
#   bash studies/feedback-use/report.sh [CONFIG]   (or STUDY_CONFIG=CONFIG, as studies/feedback-use/run.sh reads it;
#   default studies/feedback-use/study.yaml)
set -euo pipefail
cd "$(dirname "$0")/../.."
config=${1:-${STUDY_CONFIG:-studies/feedback-use/study.yaml}}
out=$(.venv/bin/python -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['output_dir'])" "$config")
.venv/bin/rltf compare --config "$config" --report-only > /dev/null
mkdir -p studies/feedback-use/archive
cp "$out/results.md" "$out/results.json" studies/feedback-use/archive/
# the accuracy and revision-use curves of each task that has a finished training run
tasks=$(.venv/bin/python -c "
import json, sys
s = json.load(open(sys.argv[1]))
print(' '.join(t for t, m in s['by_task'].items()
               if any(r['points'] and r['method'] != 'base' for r in m['accuracy']['table'].values())))" "$out/results.json")
rm -f studies/feedback-use/archive/*.png
for task in $tasks; do
  for metric in accuracy revision_use draft_revision_use; do
    src="$out/curves-$task-$metric.png"
    [ -f "$src" ] && cp "$src" "studies/feedback-use/archive/$task-$metric.png"
  done
done
# the confirmatory report: seeds 1-2 alone (seed 0 suggested the hypotheses; docs/RESULTS.md)
if .venv/bin/rltf compare --config "$config" --report-only --set 'seeds=[1, 2]' \
     --report-dir "$out/confirm-seeds-1-2" > /dev/null 2>&1; then
  cp "$out/confirm-seeds-1-2/results.md" studies/feedback-use/archive/confirm-seeds-1-2.md
else
  echo "no finished run of seeds 1-2 yet: no confirmatory report"
fi
# every finished run's result, metrics and wall time, committed with the report: runs/ is not
.venv/bin/python studies/feedback-use/archive.py save "$config"
echo "wrote studies/feedback-use/archive/ from $out"
