#!/usr/bin/env bash
# Does training change how the model uses a critique? Two-round greedy eval (answer, critique,
# revision) of the base model and of each trained checkpoint, with the programmatic critic and with
# correctness-only feedback, on the same 64 held-out add2 prompts.
#   bash studies/cpu-results/results_revision.sh runs/results-add2-s0
set -euo pipefail
root=${1:-runs/results-add2-s0}
rltf=${RLTF:-.venv/bin/rltf}
mkdir -p "$root/revision"
for model in smollm2-135m $(ls -d "$root"/*/checkpoint-*/model 2>/dev/null); do
  name=$(echo "$model" | sed -e "s|$root/||" -e 's|/checkpoint-.*||')
  for fb in critic correctness; do
    $rltf eval --model "$model" --task add2 --n 64 --seed 12345 --rounds 2 --feedback "$fb" \
      --output "$root/revision/$name-$fb.json" > "$root/revision/$name-$fb.log" 2>&1
    head -3 "$root/revision/$name-$fb.log"
  done
done
