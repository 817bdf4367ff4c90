#!/usr/bin/env bash
# The CPU comparison of docs/RESULTS.md: base vs GRPO vs multi-turn GRPO vs RLTF-SD vs RLTF-FM on
# the add2 preset, at an equal budget of generated tokens. The RLTF-FM run is `rltf demo` (10 steps
# of 4 prompts x 4 samples); every other method gets the number of tokens it generated.
#   bash studies/cpu-results/results_add2.sh [SEED]        (about 50 minutes on 2 cores)
set -euo pipefail
seed=${1:-0}
out=runs/results-add2-s$seed
rltf=${RLTF:-.venv/bin/rltf}
$rltf demo --seed "$seed" --output-dir "$out/rltf-fm" --show 0
budget=$(python3 -c "import json;print(int([json.loads(l) for l in open('$out/rltf-fm/metrics.jsonl')][-1]['tokens/cumulative']))")
echo "token budget: $budget"
common=(--task add2 --seed "$seed" --prompts-per-step 4 --group-size 4 --learning-rate 2e-5 --eval-n 64
        --eval-every 0 --save-every 0 --save-total-limit 1 --max-steps 1000 --max-generated-tokens "$budget")
for method in multiturn-grpo rltf-sd grpo; do
  $rltf train "$method" "${common[@]}" --output-dir "$out/$method"
done
