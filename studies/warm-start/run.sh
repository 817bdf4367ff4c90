#!/usr/bin/env bash
# The warm-start runs of docs/RESULTS.md ("Teaching the model to use a critique"), one after the
# other in the background: each task's warm start (the critic's critique in the revision prompt) and
# its control (correctness-only feedback), seed 0, and the runs added after them. Each call is one
# background queue, one after the other, on one thread (two queues side by side fit in 24 GB only if
# at most one of them runs a constraints run, ~11 GB each). Console: /tmp/warm-start-FIRSTNAME.log;
# runs in runs/warm-start/ (a run that has a directory there resumes from its last checkpoint).
#   bash studies/warm-start/run.sh [NAME ...]     (default: the seed-0 runs, in the order below)
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNTING='constraints?kinds=[length_constraints:number_words,length_constraints:number_sentences,keywords:letter_frequency,keywords:frequency,detectable_format:number_bullet_lists,detectable_content:number_placeholders]'
ADD2_EVAL="--set eval_n=400 --set eval_every=0"
LORA="--use-lora true --learning-rate 2e-4"  # the LoRA variation: r 32, alpha 64 (the defaults), lr 2e-4
declare -A RUNS=(
  [add2-critic]="--config recipes/cpu-add2-revision-sft.yaml"
  [add2-control]="--config recipes/cpu-add2-revision-sft.yaml --feedback correctness"
  [constraints-critic]="--config recipes/cpu-constraints-revision-sft.yaml"
  [constraints-control]="--config recipes/cpu-constraints-revision-sft.yaml --feedback correctness"
  [counting-critic]="--config recipes/cpu-constraints-revision-sft.yaml --task $COUNTING"
  [counting-control]="--config recipes/cpu-constraints-revision-sft.yaml --task $COUNTING --feedback correctness"
  # constraints: seeds 1 and 2 of the warm start (RESULTS "two more seeds"; the decisive study starts from them)
  [constraints-critic-s1]="--config recipes/cpu-constraints-revision-sft.yaml --set eval_every=0 --set eval_n=400 --set seed=1"
  [constraints-critic-s2]="--config recipes/cpu-constraints-revision-sft.yaml --set eval_every=0 --set eval_n=400 --set seed=2"
  # constraints: the controls of seeds 1 and 2 (RESULTS "two more seeds of the warm start")
  [constraints-control-s1]="--config recipes/cpu-constraints-revision-sft.yaml --feedback correctness --set eval_every=0 --set eval_n=400 --set seed=1 --set eval_at_start=false"
  [constraints-control-s2]="--config recipes/cpu-constraints-revision-sft.yaml --feedback correctness --set eval_every=0 --set eval_n=400 --set seed=2 --set eval_at_start=false"
  # add2: two more seeds and the variations (RESULTS "add2: more seeds and the variations")
  [add2-critic-s1]="--config recipes/cpu-add2-revision-sft.yaml --set seed=1 $ADD2_EVAL"
  [add2-critic-s2]="--config recipes/cpu-add2-revision-sft.yaml --set seed=2 $ADD2_EVAL"
  [add2-worked]="--config recipes/cpu-add2-revision-sft.yaml --targets worked_solution $ADD2_EVAL"
  [add2-lora]="--config recipes/cpu-add2-revision-sft.yaml $LORA $ADD2_EVAL"
  [add2-lr3x]="--config recipes/cpu-add2-revision-sft.yaml --learning-rate 1.5e-4 $ADD2_EVAL"
  [add2-steps3x]="--config recipes/cpu-add2-revision-sft.yaml --max-steps 180 --save-every 30 $ADD2_EVAL --set eval_feedback_at=last"
  # add2: the confirmation of worked-solution targets (RESULTS "worked-solution targets, the confirmation")
  [add2-worked-s1]="--config recipes/cpu-add2-revision-sft.yaml --targets worked_solution --set seed=1 $ADD2_EVAL --set eval_feedback_at=last"
  [add2-worked-s2]="--config recipes/cpu-add2-revision-sft.yaml --targets worked_solution --set seed=2 $ADD2_EVAL --set eval_feedback_at=last"
  [add2-worked-control]="--config recipes/cpu-add2-revision-sft.yaml --targets worked_solution --feedback correctness $ADD2_EVAL --set eval_feedback_at=last"
  # add2: LoRA's seeds and control (RESULTS "worked-solution targets, the confirmation": LoRA 13 vs 3 on seed 0)
  [add2-lora-s1]="--config recipes/cpu-add2-revision-sft.yaml $LORA --set seed=1 $ADD2_EVAL --set eval_feedback_at=last"
  [add2-lora-s2]="--config recipes/cpu-add2-revision-sft.yaml $LORA --set seed=2 $ADD2_EVAL --set eval_feedback_at=last"
  [add2-lora-control]="--config recipes/cpu-add2-revision-sft.yaml $LORA --feedback correctness $ADD2_EVAL --set eval_feedback_at=last"
)
ORDER=(add2-critic add2-control constraints-critic constraints-control counting-critic counting-control)
names=("${@:-${ORDER[@]}}")
[ $# -gt 0 ] || names=("${ORDER[@]}")
if [ "${WARM_START_QUEUE:-}" != 1 ]; then  # detach: a closed shell must not stop the queue
  log="/tmp/warm-start-${names[0]}.log"
  WARM_START_QUEUE=1 OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" \
    setsid nohup bash "$0" "${names[@]}" >> "$log" 2>&1 < /dev/null &
  echo "warm-start runs started (pid $!): ${names[*]}; console $log"
  exit 0
fi
for name in "${names[@]}"; do
  # shellcheck disable=SC2086
  .venv/bin/rltf train revision-sft ${RUNS[$name]} --output-dir "runs/warm-start/$name" \
    $( [ -d "runs/warm-start/$name" ] && echo --resume "runs/warm-start/$name" ) || echo "$name failed"
done
