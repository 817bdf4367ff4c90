#!/usr/bin/env bash
# The decisive study's report from the runs finished so far (issue 43), trains nothing: each arm's
# tables, item-level tests and curves (rltf compare --report-only) into studies/decisive/ARM/archive/,
# its finished runs into ARM/archive/runs/, and the warm start's effect per method (warm vs base, item
# by item) into studies/decisive/warm-vs-base.md, and the exploratory comparisons between methods (not
# pre-registered: exploratory.py) into studies/decisive/exploratory.md. The archived runs go back into
# runs/ first (where a run has no result.json), so that a new machine whose runs/ holds only this
# sitting's runs reports the whole study, not this sitting's runs alone.
#   bash studies/decisive/report.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
for arm in warm base; do
  config=studies/decisive/$arm/study.yaml
  out=runs/study-decisive/$arm
  STUDY_ARCHIVE=studies/decisive/$arm/archive .venv/bin/python studies/feedback-use/archive.py restore "$config" > /dev/null
  if ! .venv/bin/rltf compare --config "$config" --report-only > /dev/null 2>&1; then
    echo "$arm: no finished runs yet"
    continue
  fi
  mkdir -p "studies/decisive/$arm/archive"
  rm -f studies/decisive/$arm/archive/*.png
  cp "$out/results.md" "$out/results.json" "studies/decisive/$arm/archive/"
  for png in "$out"/curves-*.png; do [ -f "$png" ] && cp "$png" "studies/decisive/$arm/archive/"; done
  STUDY_ARCHIVE=studies/decisive/$arm/archive .venv/bin/python studies/feedback-use/archive.py save "$config"
done
.venv/bin/python studies/decisive/warm_vs_base.py > studies/decisive/warm-vs-base.md
.venv/bin/python studies/decisive/exploratory.py > studies/decisive/exploratory.md
echo "wrote studies/decisive/{warm,base}/archive/, studies/decisive/warm-vs-base.md and exploratory.md"
