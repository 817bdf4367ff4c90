#!/usr/bin/env bash
# Start (or resume) one arm of the decisive study (issue 43) in the background. The warm arm starts each
# seed from that seed's feedback-use warm start: runs/study-decisive/warm-start/TASK-sSEED is linked to
# the model of studies/warm-start's run of that task and seed (trained there, or by
# `bash studies/warm-start/run.sh NAME` on a new machine, checked against its archive step by step, else
# the arm stops). Archived finished runs go back into runs/
# first, then `rltf compare` trains the next; one thread each, console /tmp/study-decisive-ARM.log (or
# $STUDY_LOG: two calls with disjoint --only lists train side by side, one log each).
#   bash studies/decisive/run.sh warm|base [rltf compare flags, e.g. --only 'constraints/*-s0' --time-limit 2h]
set -euo pipefail
cd "$(dirname "$0")/../.."
arm=${1:?usage: run.sh warm|base [rltf compare flags]}
shift
config=studies/decisive/$arm/study.yaml
[ -f "$config" ] || { echo "no arm $arm (warm or base)"; exit 2; }
declare -A WARM=([constraints-s0]=constraints-critic/checkpoint-45 [constraints-s1]=constraints-critic-s1/checkpoint-45
                 [constraints-s2]=constraints-critic-s2/checkpoint-45 [add2-s0]=add2-critic/checkpoint-60
                 [add2-s1]=add2-critic-s1/checkpoint-60 [add2-s2]=add2-critic-s2/checkpoint-60)
if [ "$arm" = warm ]; then
  mkdir -p runs/study-decisive/warm-start
  for key in "${!WARM[@]}"; do
    model="runs/warm-start/${WARM[$key]}/model"
    name=${WARM[$key]%%/*}
    if [ -f "$model/config.json" ]; then
      # A warm start trained again on a new machine must be the archived run, step for step: the study's
      # finished runs of this seed started from the archived one's weights (verify_rerun.py).
      if [ -f "studies/warm-start/archive/runs/$name/metrics.jsonl" ] &&
         ! .venv/bin/python studies/warm-start/verify_rerun.py "runs/warm-start/$name"; then
        if [ "${ALLOW_DIFFERENT_WARM_START:-0}" != 1 ]; then
          echo "runs/warm-start/$name differs from its archive (above): the study's runs of $key would start from"
          echo "another model than its finished ones. Stopped; ALLOW_DIFFERENT_WARM_START=1 overrides (and say so in RESULTS)."
          exit 3
        fi
      fi
      ln -sfn "$(pwd)/$model" "runs/study-decisive/warm-start/$key"
    else
      echo "missing $model: train it first (bash studies/warm-start/run.sh $name); runs of $key will fail"
    fi
  done
fi
log=${STUDY_LOG:-/tmp/study-decisive-$arm.log}
STUDY_ARCHIVE=studies/decisive/$arm/archive .venv/bin/python studies/feedback-use/archive.py restore "$config"
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} setsid nohup .venv/bin/rltf compare --config "$config" "$@" \
  >> "$log" 2>&1 < /dev/null &
echo "decisive study, $arm arm, running (pid $!); console: $log"
