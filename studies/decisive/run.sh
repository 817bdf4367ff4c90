#!/usr/bin/env bash
# Start (or resume) one arm of the decisive study (issue 43) in the background. The warm arm starts each
# seed from that seed's feedback-use warm start: runs/study-decisive/warm-start/TASK-sSEED is linked to
# the model of studies/warm-start's run of that task and seed (trained there, or by
# `bash studies/warm-start/run.sh NAME` on a new machine, checked step by step against the run the seed's
# study runs started from, else the arm stops: warm_starts.py, ALLOW_DIFFERENT_WARM_START=NAME). Archived finished runs go back into runs/
# first, then `rltf compare` trains the next; one thread each, console /tmp/study-decisive-ARM.log (or
# $STUDY_LOG: two calls with disjoint --only lists train side by side, one log each).
#   bash studies/decisive/run.sh warm|base [rltf compare flags, e.g. --only 'constraints/*-s0' --time-limit 2h]
set -euo pipefail
cd "$(dirname "$0")/../.."
arm=${1:?usage: run.sh warm|base [rltf compare flags]}
shift
config=studies/decisive/$arm/study.yaml
[ -f "$config" ] || { echo "no arm $arm (warm or base)"; exit 2; }
if [ "$arm" = warm ]; then
  # each seed's warm-started model, checked step by step against the run that seed's study runs started
  # from (studies/decisive/warm_starts.py; exit 3 stops the arm)
  .venv/bin/python studies/decisive/warm_starts.py "$@"
fi
log=${STUDY_LOG:-/tmp/study-decisive-$arm.log}
STUDY_ARCHIVE=studies/decisive/$arm/archive .venv/bin/python studies/feedback-use/archive.py restore "$config"
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} setsid nohup .venv/bin/rltf compare --config "$config" "$@" \
  >> "$log" 2>&1 < /dev/null &
echo "decisive study, $arm arm, running (pid $!); console: $log"
