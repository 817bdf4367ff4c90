#!/usr/bin/env bash
# The warm-start runs of docs/RESULTS.md ("Teaching the model to use a critique"), one after the
# other in the background: each task's warm start (the critic's critique in the revision prompt) and
# its control (correctness-only feedback), seed 0. Console: /tmp/warm-start.log; runs in runs/warm-start/.
#   bash studies/warm-start/run.sh [NAME ...]     (default: all, in the order below)
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNTING='constraints?kinds=[length_constraints:number_words,length_constraints:number_sentences,keywords:letter_frequency,keywords:frequency,detectable_format:number_bullet_lists,detectable_content:number_placeholders]'
declare -A RUNS=(
  [add2-critic]="--config recipes/cpu-add2-revision-sft.yaml"
  [add2-control]="--config recipes/cpu-add2-revision-sft.yaml --feedback correctness"
  [constraints-critic]="--config recipes/cpu-constraints-revision-sft.yaml"
  [constraints-control]="--config recipes/cpu-constraints-revision-sft.yaml --feedback correctness"
  [counting-critic]="--config recipes/cpu-constraints-revision-sft.yaml --task $COUNTING"
  [counting-control]="--config recipes/cpu-constraints-revision-sft.yaml --task $COUNTING --feedback correctness"
)
ORDER=(add2-critic add2-control constraints-critic constraints-control counting-critic counting-control)
names=("${@:-${ORDER[@]}}")
[ $# -gt 0 ] || names=("${ORDER[@]}")
(
  for name in "${names[@]}"; do
    # shellcheck disable=SC2086
    .venv/bin/rltf train revision-sft ${RUNS[$name]} --output-dir "runs/warm-start/$name" \
      $( [ -d "runs/warm-start/$name" ] && echo --resume "runs/warm-start/$name" ) || echo "$name failed"
  done
) >> /tmp/warm-start.log 2>&1 &
echo "warm-start runs started (pid $!): ${names[*]}; console /tmp/warm-start.log"
