#!/usr/bin/env bash
# Start (or resume) the feedback-use study (issue 16) in the background: first the finished runs kept
# in studies/feedback-use/archive/runs/ go back into runs/ (a new machine has none), then `rltf compare` skips them and
# trains the next. Its console goes to /tmp/study.log. After a sitting: bash studies/feedback-use/report.sh.
#   bash studies/feedback-use/run.sh [rltf compare flags, e.g. --only 'fact_summary/*-s1' --time-limit 1.5h]
#   STUDY_CONFIG=other.yaml bash studies/feedback-use/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
config=${STUDY_CONFIG:-studies/feedback-use/study.yaml}
.venv/bin/python studies/feedback-use/archive.py restore "$config"
nohup .venv/bin/rltf compare --config "$config" "$@" >> /tmp/study.log 2>&1 &
echo "study running (pid $!); console: /tmp/study.log"
