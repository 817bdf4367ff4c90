#!/usr/bin/env bash
# span-ppo vs scalar-ppo on the CPU fact-summary task, 3 seeds, equal steps (docs/RESULTS.md).
#   bash studies/cpu-results/results_text2grad.sh && python studies/cpu-results/summarize_text2grad.py runs/t2g
set -euo pipefail
RLTF=${RLTF:-.venv/bin/rltf}
for seed in 0 1 2; do
  for method in span-ppo scalar-ppo; do
    out=runs/t2g/${method}-s${seed}
    if [ -f "$out/done.json" ]; then continue; fi
    resume=()
    if ls -d "$out"/checkpoint-* >/dev/null 2>&1; then resume=(--resume "$out"); fi
    $RLTF train "$method" --config "recipes/cpu-fact-summary-${method}.yaml" --seed "$seed" --output-dir "$out" "${resume[@]}" \
      > "runs/t2g/${method}-s${seed}.log" 2>&1
    echo "{\"method\": \"$method\", \"seed\": $seed}" > "$out/done.json"
  done
done
