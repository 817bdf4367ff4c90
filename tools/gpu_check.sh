#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py) on a GPU machine without network: installs the wheels of
# tools/gpu_wheels.sh when .whl/ was carried, then runs the check from this checkout (no install of
# rltf itself). Extra arguments go to the check, e.g. --sizes tiny,qwen2-0.5b or --time-budget 300.
# Output: the table on stdout, gpu_check.json (or $OUT/gpu_check.json where $OUT is set).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/rltf-site .whl/*.whl \
    || { echo "gpu_check: installing .whl/ failed" >&2; exit 2; }
  export PYTHONPATH=/tmp/rltf-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
python3 benchmarks/gpu_check.py --output "${OUT:-.}/gpu_check.json" "$@"
