#!/usr/bin/env bash
# Start (or resume) the feedback-use study (issue 16) in the background: first the finished runs kept
# in docs/study/runs/ go back into runs/ (a new machine has none), then `rltf compare` skips them and
# trains the next. Its console goes to /tmp/study.log. After a sitting: bash tools/study_report.sh.
#   bash tools/study_run.sh [rltf compare flags, e.g. --only 'fact_summary/*-s1' --time-limit 1.5h]
#   STUDY_CONFIG=other.yaml bash tools/study_run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
config=${STUDY_CONFIG:-recipes/compare/study-feedback.yaml}
.venv/bin/python tools/study_archive.py restore "$config"
nohup .venv/bin/rltf compare --config "$config" "$@" >> /tmp/study.log 2>&1 &
echo "study running (pid $!); console: /tmp/study.log"
