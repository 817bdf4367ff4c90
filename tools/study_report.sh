#!/usr/bin/env bash
# The feedback-use study's report from the runs finished so far (issue 16): tables, paired tests
# and curves, copied into docs/study/ for docs/RESULTS.md. Trains nothing.
#   bash tools/study_report.sh [recipes/compare/study-feedback.yaml]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-recipes/compare/study-feedback.yaml}
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
echo "wrote docs/study/ from $out"
